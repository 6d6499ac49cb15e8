"""Running mean and variance over batches (Chan et al.'s parallel update), as module buffers."""

from __future__ import annotations

import torch
from torch import nn


class RunningMoments(nn.Module):
    """Mean and variance of everything seen so far, per feature; saved with its owner's state.

    Starts from count 1e-4 as gymnasium's RunningMeanStd does, so the first update dominates.
    """

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Fold in `batch` [N, *shape]."""
        batch = batch.double()
        count, mean, var = batch.shape[0], batch.mean(0), batch.var(0, unbiased=False)
        total = self.count + count
        delta = mean - self.mean
        self.var.copy_((self.var * self.count + var * count + delta.pow(2) * self.count * count / total) / total)
        self.mean.add_(delta * count / total)
        self.count.copy_(total)

    def std(self, eps: float = 1e-8) -> torch.Tensor:
        return (self.var + eps).sqrt()
