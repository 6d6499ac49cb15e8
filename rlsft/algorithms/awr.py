"""Advantage-weighted regression (Peng et al. 2019) on a dataset: maximum likelihood on the data's actions,
each weighted by its exponentiated advantage under a value function learned beside the policy.

    R_t = sum_{k >= t} gamma^(k - t) r_k                   the return-to-go of the data (Monte Carlo)
    A_t = (R_t - V_phi(s_t)) standardised over the batch's real steps
    L   = - mean_t min(exp(A_t / beta), w_max) log pi_theta(a_t|s_t) + value_coef * mean_t (V_phi(s_t) - R_t / scale)^2

V_phi predicts R_t / `value_scale` (returns-to-go run to hundreds on the MuJoCo datasets), and its error
is not weighted. Standardising A is a choice: MuJoCo returns differ by orders of magnitude between envs,
and one beta then serves all of them. The weights carry no gradient; the clip at w_max is AWR's.
"""

from __future__ import annotations

from tensordict import TensorDict
from torch import nn
from torchrl.modules import MLP
from torchrl.objectives.value.functional import reward2go

from rlsft.algorithms.base import Algorithm, LossOutput, check_reduction, nll_loss, real_steps
from rlsft.algorithms.importance_weights import check_clip_bounds, importance_weights
from rlsft.distributed import mean_std_over_ranks
from rlsft.errors import RLSFTError


class AWR(Algorithm):
    name = "awr"
    in_keys = ("mask", "observation", "next")
    domains = ("control",)

    def __init__(
        self,
        beta: float = 1.0,
        w_max: float = 20.0,
        gamma: float = 0.99,
        value_coef: float = 0.5,
        value_scale: float = 100.0,
        value_hidden_sizes: tuple[int, ...] = (256, 256),
        reduction: str = "trajectory_mean",
    ) -> None:
        super().__init__()
        if not (beta > 0 and 0 <= gamma <= 1 and value_coef >= 0 and value_scale > 0):
            raise RLSFTError(
                f"algorithm.options beta={beta} and value_scale={value_scale} must be positive, gamma={gamma} in"
                f" [0, 1] and value_coef={value_coef} not negative; fix the override."
            )
        check_clip_bounds((0.0, w_max), "algorithm.options.w_max")
        check_reduction(reduction)
        self.beta, self.w_max, self.gamma, self.reduction = beta, w_max, gamma, reduction
        self.value_coef, self.value_scale, self.value_hidden_sizes = value_coef, value_scale, tuple(value_hidden_sizes)
        self.value: nn.Module | None = None

    def attach(self, policy: nn.Module) -> None:
        """V_phi: an MLP over the policy's (standardised) observations; the learner trains it with the policy."""
        self.value = MLP(
            in_features=policy.observation_dim, out_features=1, num_cells=self.value_hidden_sizes,
            activation_class=nn.ReLU,
        )  # fmt: skip

    def loss(self, policy: nn.Module, batch: TensorDict) -> LossOutput:
        mask = batch["mask"]
        target = reward2go(batch["next", "reward"], batch["next", "done"], self.gamma).squeeze(-1) / self.value_scale
        value = self.value(policy.normalize(batch["observation"])).squeeze(-1)
        value_loss = ((value - target).pow(2) * mask).sum() / real_steps(mask)
        advantage = (target - value).detach()[mask.bool()]
        mean, std = mean_std_over_ranks(advantage)
        standardised = advantage.new_zeros(mask.shape).masked_scatter(mask.bool(), (advantage - mean) / (std + 1e-8))
        weights, metrics = importance_weights(standardised / self.beta, 1.0, 0.0, self.w_max, False, mask=mask)
        log_prob = policy.log_prob(batch)
        policy_loss = nll_loss(log_prob, mask, weights, self.reduction)
        metrics.update(policy_loss=policy_loss.detach(), value_loss=value_loss.detach())
        return LossOutput(policy_loss + self.value_coef * value_loss, metrics)
