"""Behaviour cloning: maximum likelihood on every trajectory of the dataset.

    L(theta) = - E_{tau in D} [ log p(tau; theta) ]

Trained from scratch on the full, unfiltered data, this is also pi_ref for the control
experiments (method.md §4), which the fine-tuning algorithms start from.
"""

from __future__ import annotations

from tensordict import TensorDict
from torch import nn

from rlsft.algorithms.base import Algorithm, LossOutput, check_reduction, nll_loss


class BC(Algorithm):
    name = "bc"

    def __init__(self, reduction: str = "trajectory_mean") -> None:
        super().__init__()
        check_reduction(reduction)
        self.reduction = reduction

    def loss(self, policy: nn.Module, batch: TensorDict) -> LossOutput:
        loss = nll_loss(policy.log_prob(batch), batch["mask"], reduction=self.reduction)
        return LossOutput(loss, {"nll": loss.detach()})
