"""SAC's actor (CleanRL's sac_continuous_action): a = tanh(u), u ~ N(mu(s), sigma(s)^2), on [-1, 1] actions.

    mu(s), h(s) = MLP(s)        log sigma(s) = log_std_min + (log_std_max - log_std_min) (tanh(h(s)) + 1) / 2

The squashed Gaussian is torchrl's TanhNormal, so SAC's loss (torchrl's SACLoss) samples and scores
actions through the same distribution that collects them. Evaluation acts with tanh(mu(s)).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from tensordict import TensorDict
from torchrl.modules import TanhNormal

from rlsft.policies.base import Policy
from rlsft.policies.gaussian_mlp import export_program, log_std_bounds, mlp

ACTION_EDGE = 1 - 1e-6  # recorded actions on the bound (clipped data) have a finite log-prob just inside it


class TanhGaussian(Policy):
    name = "tanh_gaussian"
    in_keys = ("observation", "action", "mask")

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        hidden_sizes: Sequence[int] = (256, 256),
        activation: str = "relu",
        log_std_min: float = -5.0,
        log_std_max: float = 2.0,
    ) -> None:
        super().__init__()
        self.net = mlp(observation_dim, 2 * action_dim, hidden_sizes, activation)
        self.observation_dim, self.action_dim = observation_dim, action_dim
        self.log_std_min, self.log_std_max = log_std_bounds(log_std_min, log_std_max)

    def loc_scale(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mu(s) and sigma(s), log sigma squashed into [log_std_min, log_std_max]."""
        loc, raw = self.net(observation).float().chunk(2, dim=-1)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(raw) + 1)
        return loc, log_std.exp()

    def distribution(self, observation: torch.Tensor) -> TanhNormal:
        return TanhNormal(*self.loc_scale(observation), low=-1.0, high=1.0)

    def mean_action(self, observation: torch.Tensor) -> torch.Tensor:
        """The deterministic action used for evaluation: tanh(mu(s))."""
        return torch.tanh(self.loc_scale(observation)[0])

    forward = mean_action

    def log_prob(self, batch: TensorDict) -> torch.Tensor:
        """log pi(a_t|s_t) as [B, T] on the real steps, zero on padding."""
        mask = batch["mask"]
        action = batch["action"][mask].clamp(-ACTION_EDGE, ACTION_EDGE)
        steps = self.distribution(batch["observation"][mask]).log_prob(action)
        return steps.new_zeros(mask.shape).masked_scatter(mask, steps)

    def export(self, folder: Path) -> dict[str, str]:
        """The deterministic action tanh(mu(s)) as a torch.export program (`export_program`)."""
        return export_program(self, self.observation_dim, folder)
