"""Reward-weighted regression: maximum likelihood on every trajectory, weighted by its exponentiated return.

    L(theta) = - sum_i w_i log p(tau_i; theta),    w_i = exp(R_i / beta) / mean_j exp(R_j / beta)

The weights are a softmax over the batch (times its size: mean 1). This is the paper's own
framing of SFT on curated data (method.md §2): filtering D by a return threshold is the limit
beta -> 0 of weighting it by exp(R / beta), and beta -> infinity is BC.
"""

from __future__ import annotations

from tensordict import TensorDict
from torch import nn

from rlsft.algorithms.base import Algorithm, LossOutput, check_reduction, nll_loss
from rlsft.algorithms.importance_weights import normalized_exp_weights
from rlsft.errors import RLSFTError


class RewardWeightedRegression(Algorithm):
    name = "rwr"
    in_keys = ("mask", "return")

    def __init__(self, beta: float = 1.0, reduction: str = "trajectory_mean") -> None:
        super().__init__()
        if not beta > 0:
            raise RLSFTError(f"algorithm.options.beta={beta} must be positive (the temperature of exp(R / beta)).")
        check_reduction(reduction)
        self.beta, self.reduction = beta, reduction

    def loss(self, policy: nn.Module, batch: TensorDict) -> LossOutput:
        weights, metrics = normalized_exp_weights(batch["return"] / self.beta)
        log_prob = policy.log_prob(batch)
        loss = nll_loss(log_prob, batch["mask"], weights, self.reduction)
        return LossOutput(
            loss, {"nll": nll_loss(log_prob.detach(), batch["mask"], reduction=self.reduction), **metrics}
        )
