"""PPO with a clipped surrogate and a clipped value loss (CleanRL's ppo_continuous_action).

    L = L_clip(theta) + c_v * L_V - c_H * H[pi_theta]
    L_V = 1/2 mean_t max((V(s_t) - R_t)^2, (V_old(s_t) + clip(V(s_t) - V_old(s_t), -eps, eps) - R_t)^2)

Batches are fresh rollouts (rlsft/sources/rollouts.py): minibatches of single steps carrying
`sample_log_prob`, `advantage` (GAE), `value_target` and the `value` at collection time.
"""

from __future__ import annotations

from tensordict import TensorDict
from torch import nn

from rlsft.algorithms.base import Algorithm, LossOutput, real_steps
from rlsft.algorithms.policy_gradient import clipped_surrogate
from rlsft.distributed import mean_std_over_ranks
from rlsft.errors import RLSFTError


class PPO(Algorithm):
    name = "ppo"
    source = "rollouts"
    domains = ("control",)
    in_keys = ("mask", "advantage", "sample_log_prob", "observation", "value", "value_target")

    def __init__(
        self,
        clip_epsilon: float = 0.2,
        value_coef: float = 0.5,
        entropy_coef: float = 0.0,
        clip_value: bool = True,
        normalize_advantage: bool = True,
    ) -> None:
        super().__init__()
        if not (clip_epsilon > 0 and value_coef >= 0 and entropy_coef >= 0):  # each trained silently otherwise
            raise RLSFTError(
                f"algorithm.options clip_epsilon={clip_epsilon} must be positive, and value_coef={value_coef} and"
                f" entropy_coef={entropy_coef} not negative; fix the override."
            )
        self.clip_epsilon, self.value_coef, self.entropy_coef = clip_epsilon, value_coef, entropy_coef
        self.clip_value, self.normalize_advantage = clip_value, normalize_advantage

    def loss(self, policy: nn.Module, batch: TensorDict) -> LossOutput:
        mask = batch["mask"]
        advantage = batch["advantage"]
        if self.normalize_advantage:  # per minibatch, as CleanRL (split over ranks: the whole minibatch's)
            mean, std = mean_std_over_ranks(advantage[mask])
            advantage = (advantage - mean) / (std + 1e-8)
        steps = real_steps(mask)
        policy_loss, metrics = clipped_surrogate(
            policy.log_prob(batch), batch["sample_log_prob"], advantage, mask, steps, self.clip_epsilon
        )
        value, old_value, target = policy.value(batch["observation"]), batch["value"], batch["value_target"]
        value_error = (value - target).pow(2)
        if self.clip_value:
            clipped = old_value + (value - old_value).clamp(-self.clip_epsilon, self.clip_epsilon)
            value_error = value_error.maximum((clipped - target).pow(2))
        value_loss = 0.5 * (value_error * mask).sum() / steps  # as the surrogate's mean
        entropy = policy.entropy()
        loss = policy_loss + self.value_coef * value_loss - self.entropy_coef * entropy
        metrics.update(policy_loss=policy_loss.detach(), value_loss=value_loss.detach(), entropy=entropy.detach())
        return LossOutput(loss, metrics)
