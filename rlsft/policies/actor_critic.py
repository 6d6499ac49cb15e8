"""PPO's policy: the Gaussian MLP actor plus a value network, over running-normalised observations.

The actor is an ordinary GaussianMLP whose standardisation buffers track the running mean and
std of every observation collected so far (CleanRL normalises observations the same way), so
a trained actor alone is a complete behaviour policy for `rlsft data make`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from tensordict import TensorDict
from torch import nn

from rlsft.policies.base import Policy
from rlsft.policies.gaussian_mlp import GaussianMLP, mlp
from rlsft.running_moments import RunningMoments


class ActorCritic(Policy):
    name = "actor_critic"
    in_keys = ("observation", "action", "mask")

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        hidden_sizes: Sequence[int] = (64, 64),
        activation: str = "tanh",
        log_std_min: float = -5.0,
        log_std_max: float = 2.0,
    ) -> None:
        super().__init__()
        self.actor = GaussianMLP(observation_dim, action_dim, hidden_sizes, log_std_min, log_std_max, True, activation)
        self.critic = mlp(observation_dim, 1, hidden_sizes, activation)
        self.observation_moments = RunningMoments((observation_dim,))
        # CleanRL's initialisation: orthogonal, gain sqrt(2); small output layers.
        for network, output_gain in ((self.actor.mean_net, 0.01), (self.critic, 1.0)):
            linears = [m for m in network.modules() if isinstance(m, nn.Linear)]
            for layer in linears:
                nn.init.orthogonal_(layer.weight, math.sqrt(2) if layer is not linears[-1] else output_gain)
                nn.init.zeros_(layer.bias)

    @torch.no_grad()
    def update_observation_statistics(self, observations: torch.Tensor) -> None:
        """Fold a batch of observations [N, obs_dim] into the actor's standardisation."""
        self.observation_moments.update(observations)
        self.actor.observation_mean.copy_(self.observation_moments.mean)
        self.actor.observation_std.copy_(self.observation_moments.std())

    def mean_action(self, observation: torch.Tensor) -> torch.Tensor:
        return self.actor.mean_action(observation)

    def log_prob(self, batch: TensorDict) -> torch.Tensor:
        return self.actor.log_prob(batch)

    def export(self, folder: Path) -> dict[str, str]:
        """The actor's deterministic action (the critic is training's alone): GaussianMLP.export."""
        return self.actor.export(folder)

    def value(self, observation: torch.Tensor) -> torch.Tensor:
        """V(s), shaped like the observation's batch dims."""
        return self.critic(self.actor.normalize(observation)).float().squeeze(-1)

    def entropy(self) -> torch.Tensor:
        """Entropy of pi(.|s): state-independent, sum over action dims of log_std + log(2 pi e)/2."""
        return (self.actor.clipped_log_std() + 0.5 * math.log(2 * math.pi * math.e)).sum()

    @torch.no_grad()
    def explore(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A sampled action and its log-prob, for collecting rollouts."""
        distribution = self.actor.distribution(observation)
        action = distribution.sample()
        return action, distribution.log_prob(action).sum(-1)
