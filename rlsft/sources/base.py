"""What a batch source is: the trainer's one axis of variation (design.md), where batches come from."""

from __future__ import annotations

from typing import Protocol

from tensordict import TensorDict


class BatchSource(Protocol):
    """Where batches come from: an offline dataset or fresh rollouts."""

    keys: tuple[str, ...]  # the keys every batch holds
    # Under data parallel: True where each rank draws its own batches (its envs, its prompts, its own RNG),
    # whose states the checkpoint then holds rank by rank; False where every rank draws the same global batch.
    per_rank: bool

    def sample(self) -> TensorDict: ...

    def metrics(self) -> dict[str, float]: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def close(self) -> None: ...
