"""What a batch source is: the trainer's one axis of variation (design.md), where batches come from."""

from __future__ import annotations

from typing import Protocol

import torch
from tensordict import TensorDict

from rlsft import distributed


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


def env_metrics(frames: int, finished_returns: list[float]) -> dict[str, float]:
    """What a source that steps envs logs: its frames so far and the mean return of the episodes `finished_returns`
    (those finished since it was last asked), over every rank's."""
    total, count = distributed.all_ranks_sum(
        torch.tensor([sum(finished_returns), len(finished_returns)], dtype=torch.float64)
    )
    return {"frames": float(frames), **({"episode_return": float(total / count)} if count else {})}
