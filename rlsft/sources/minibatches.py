"""The minibatches an on-policy source serves from its latest rollout, and their checkpoint state.

PPO's steps (rollouts.py) and GRPO's groups of completions (text_rollouts.py) are served alike:
`epochs` passes over each rollout, each a fresh shuffle cut into `minibatches` parts, and a new
rollout once none is left. A checkpoint holds the minibatches left, so that a resumed run serves
exactly those before it collects again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import torch
from tensordict import TensorDict


class MinibatchQueue:
    def __init__(
        self,
        epochs: int,
        minibatches: int,
        generator: torch.Generator | None = None,
        device: torch.device | None = None,
    ) -> None:
        """The shuffles draw from `generator` (torch's global RNG when None), on `device`."""
        self.epochs, self.minibatches, self.generator, self.device = epochs, minibatches, generator, device
        self.waiting: deque[TensorDict] = deque()

    def __len__(self) -> int:
        return len(self.waiting)

    def next(self, refill: Callable[[], None]) -> TensorDict:
        """The next minibatch; when none is left, `refill` first collects a rollout and `fill`s the queue."""
        if not self.waiting:
            refill()
        return self.waiting.popleft()

    def fill(
        self,
        units: TensorDict | torch.Tensor,
        minibatch: Callable[[TensorDict | torch.Tensor], TensorDict] = lambda part: part,
    ) -> None:
        """Queues `epochs` shuffles of a rollout's `units` (its steps, or its groups' ids), each cut into
        `minibatches` parts; `minibatch` makes a part into the batch the loss sees (a part of steps is one)."""
        for _ in range(self.epochs):
            order = torch.randperm(len(units), generator=self.generator, device=self.device)
            self.waiting.extend(minibatch(part) for part in units[order].tensor_split(self.minibatches))

    def state_dict(self) -> list[dict[str, torch.Tensor]]:
        """The minibatches waiting, as weights_only-loadable dicts of tensors."""
        return [minibatch.to_dict() for minibatch in self.waiting]

    def load_state_dict(self, state: list[dict[str, torch.Tensor]]) -> None:
        """The minibatches `state_dict` saved; each has the batch contract's [B, T] `mask`."""
        self.waiting = deque(TensorDict(minibatch, batch_size=[len(minibatch["mask"])]) for minibatch in state)
