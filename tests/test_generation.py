"""Generation: the sampler's log-probs are the policy's own log-probs on the same tokens."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from rlsft.envs.generation import TransformersGenerator
from rlsft.policies.causal_lm import CausalLMPolicy

PAD, EOS, BOS = 0, 1, 2


def tiny_llama() -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         pad_token_id=PAD, eos_token_id=EOS, bos_token_id=BOS)  # fmt: skip
    return LlamaForCausalLM(config).eval()


def test_sampling_log_probs_equal_the_policys_log_prob() -> None:
    model = tiny_llama()
    prompts = [[BOS, 5, 6], [BOS, 7, 8, 9, 10, 11], [BOS, 12]]  # ragged: left padding is exercised
    torch.manual_seed(1)
    batch = TransformersGenerator(model, PAD, EOS).generate(prompts, max_new_tokens=12, temperature=1.0)
    assert batch["tokens"].shape == batch["mask"].shape == batch["sample_log_prob"].shape
    assert batch["mask"].any(-1).all()
    with torch.no_grad():
        log_prob = CausalLMPolicy(model).log_prob(batch)
    torch.testing.assert_close(log_prob, batch["sample_log_prob"], atol=1e-4, rtol=1e-4)
    # After an end-of-sequence token nothing more is an action.
    for row in range(len(prompts)):
        response = batch["tokens"][row][batch["mask"][row]]
        assert (response[:-1] != EOS).all()
