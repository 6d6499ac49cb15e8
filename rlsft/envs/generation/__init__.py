"""Generation backends behind one interface: prompts in, a text batch with sampling log-probs out.

The batch (policies/causal_lm.py) holds `tokens`, `attention_mask`, `mask` (response tokens
up to and including the end-of-sequence token) and `sample_log_prob` [B, L]: the log-prob
each token had under the sampler, so losses never recompute what the sampler gave.
"""

from __future__ import annotations

from rlsft.envs.generation.base import Generator
from rlsft.envs.generation.transformers_backend import TransformersGenerator
from rlsft.policies.causal_lm import CausalLMPolicy
from rlsft.registry import build, import_all

import_all(__name__, __path__)


def make_generator(backend: str, policy: CausalLMPolicy, options: dict | None = None) -> Generator:
    """The generation backend `backend` (`generation.backend`) over the policy being trained, with its
    `generation.options` (vllm: gpu_memory_utilization)."""
    return build(Generator, "generation backend", backend, options or {}, "generation.options", policy=policy)


__all__ = ["Generator", "TransformersGenerator", "make_generator"]
