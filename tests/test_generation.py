"""Generation: the sampler's log-probs are the policy's own log-probs on the same tokens."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from rlsft.envs.generation import TransformersGenerator
from rlsft.policies.causal_lm import CausalLMPolicy
from rlsft.pretrained.tiny_lm import char_tokenizer

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
        log_prob = CausalLMPolicy(model, char_tokenizer()).log_prob(batch)
    torch.testing.assert_close(log_prob, batch["sample_log_prob"], atol=1e-4, rtol=1e-4)
    # After an end-of-sequence token nothing more is an action.
    for row in range(len(prompts)):
        response = batch["tokens"][row][batch["mask"][row]]
        assert (response[:-1] != EOS).all()


def test_the_control_losses_serve_text_unchanged() -> None:
    """iw-SFT (LLM defaults of method.md §4) and SFT on a text batch, through the same learner."""
    from rlsft.algorithms.iw_sft import IWSFT
    from rlsft.algorithms.sft import SFT
    from rlsft.learner import Learner, LearnerConfig

    model = tiny_llama()
    torch.manual_seed(2)
    batch = TransformersGenerator(model, PAD, EOS).generate([[BOS, 5, 6], [BOS, 7]], max_new_tokens=8)
    batch["ref_log_prob"] = batch["sample_log_prob"]  # pi_ref = the frozen start model that sampled
    for algorithm in (IWSFT(q="policy", alpha=1.0, w_max=16.0, self_normalize=False, reduction="token_mean"), SFT()):
        policy = CausalLMPolicy(
            tiny_llama().train(), char_tokenizer()
        )  # the same weights as the sampler: pi = q = pi_ref
        before = [p.detach().clone() for p in policy.parameters()]
        learner = Learner(policy, algorithm, LearnerConfig(steps=3, lr=1e-3, warmup_steps=0, device="cpu"))
        metrics = [learner.train_step(batch) for _ in range(3)]
        assert all(torch.isfinite(m["loss"]) for m in metrics) and metrics[0]["nll"] > metrics[-1]["nll"]
        assert any(not torch.equal(a, b) for a, b in zip(before, policy.parameters()))
        if isinstance(algorithm, IWSFT):  # log q - log pi_ref = 0 at the start: every weight is 1
            assert abs(metrics[0]["weight_mean"] - 1) < 1e-4 and abs(metrics[0]["weight_max"] - 1) < 1e-4
