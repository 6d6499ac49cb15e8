"""What a generation backend is: prompts in, a text batch with the sampler's log-probs out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from tensordict import TensorDict

from rlsft.registry import Registered


class Generator(Registered):
    """Base class; a subclass with a `name` registers itself for `generation.backend=<name>`, built by its
    `from_config(policy)` over the policy being trained."""

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[Generator]]] = {}

    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, temperature: float) -> TensorDict:
        raise NotImplementedError
