"""vLLM backend: runs only where vLLM and a GPU are present (it is an optional extra)."""

from __future__ import annotations

import pytest
import torch

vllm = pytest.importorskip("vllm")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="vLLM generation needs a GPU")


def test_vllm_log_probs_equal_the_policys_log_prob(tmp_path):
    from rlsft.envs.generation import make_generator
    from rlsft.policies.causal_lm import CausalLMPolicy, encode_prompts
    from rlsft.pretrained.tiny_lm import SHIPPED

    policy = CausalLMPolicy.from_config(str(SHIPPED)).cuda()
    tokenizer = policy.tokenizer
    generator = make_generator("vllm", policy)  # the memory check and the engine, on real hardware
    batch = generator.generate(encode_prompts(tokenizer, ["What is 12 + 34?", "What is 5 + 70?"]), 8, temperature=1.0)
    assert batch["mask"].any(-1).all()
    with torch.no_grad():
        log_prob = policy.log_prob(batch)
    torch.testing.assert_close(log_prob, batch["sample_log_prob"].to(log_prob), atol=2e-2, rtol=2e-2)
