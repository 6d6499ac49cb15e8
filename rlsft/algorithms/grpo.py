"""GRPO: the clipped surrogate with group-normalised advantages, K samples per prompt.

    A_i = (r_i - mean_{j in g(i)} r_j) / (std_{j in g(i)} r_j + eps)      for every token of sample i
    L   = L_clip(theta; A) + beta * KL_k3(pi_theta || pi_ref)           token-mean over response tokens

The batch carries `reward` and `group` (prompt id) per sample, `sample_log_prob` from the
sampler and, when beta > 0, `ref_log_prob` under the frozen start model.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import nn

from rlsft.algorithms.base import Algorithm, LossOutput, real_steps
from rlsft.algorithms.policy_gradient import clipped_surrogate, k3_kl
from rlsft.errors import RLSFTError


def group_advantages(reward: torch.Tensor, group: torch.Tensor, scale: bool = True, eps: float = 1e-4) -> torch.Tensor:
    """Each sample's reward minus its group's mean, over the group's std when `scale` (population std)."""
    _, index = torch.unique(group, return_inverse=True)
    count = torch.zeros(int(index.max()) + 1, dtype=reward.dtype, device=reward.device).index_add_(
        0, index, torch.ones_like(reward)
    )
    mean = torch.zeros_like(count).index_add_(0, index, reward) / count
    centred = reward - mean[index]
    if not scale:
        return centred
    std = (torch.zeros_like(count).index_add_(0, index, centred.pow(2)) / count).sqrt()
    return centred / (std[index] + eps)


class GRPO(Algorithm):
    name = "grpo"
    source = "rollouts"
    domains = ("text",)

    def __init__(self, clip_epsilon: float = 0.2, kl_coef: float = 0.0, scale_advantages: bool = True) -> None:
        super().__init__()
        if not (clip_epsilon > 0 and kl_coef >= 0):  # a negative KL coefficient would reward leaving pi_ref
            raise RLSFTError(
                f"algorithm.options clip_epsilon={clip_epsilon} must be positive and kl_coef={kl_coef} not"
                " negative; fix the override."
            )
        self.clip_epsilon, self.kl_coef, self.scale_advantages = clip_epsilon, kl_coef, scale_advantages

    @property
    def in_keys(self) -> tuple[str, ...]:  # type: ignore[override]
        return ("mask", "reward", "group", "sample_log_prob", *(("ref_log_prob",) if self.kl_coef > 0 else ()))

    def loss(self, policy: nn.Module, batch: TensorDict) -> LossOutput:
        mask = batch["mask"]
        advantage = group_advantages(batch["reward"], batch["group"], self.scale_advantages).unsqueeze(-1)
        log_prob = policy.log_prob(batch)
        steps = real_steps(mask)
        loss, metrics = clipped_surrogate(log_prob, batch["sample_log_prob"], advantage, mask, steps, self.clip_epsilon)
        if self.kl_coef > 0:
            # KL(pi_theta || pi_ref), the mean over response tokens; padding is zeroed before exp
            kl = (k3_kl((batch["ref_log_prob"] - log_prob) * mask) * mask).sum() / steps
            loss = loss + self.kl_coef * kl
            metrics["kl_to_ref"] = kl.detach()
        return LossOutput(loss, metrics)
