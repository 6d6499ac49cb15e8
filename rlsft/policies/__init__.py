"""Policies: anything with `log_prob(batch) -> [B, T]` over the shared trajectory batch."""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from torch import nn

from rlsft.errors import RLSFTError
from rlsft.options import checked_options
from rlsft.policies.actor_critic import ActorCritic
from rlsft.policies.gaussian_mlp import GaussianMLP

POLICIES = {"gaussian_mlp": GaussianMLP, "actor_critic": ActorCritic}


def make_policy(
    config: DictConfig, observation_dim: int, action_dim: int, trajectories: TensorDict | None = None
) -> GaussianMLP | ActorCritic:
    """The policy named by `policy.name`, sized for the env; the other keys are its arguments.

    Given `trajectories`, a policy that standardises observations takes its statistics from them.
    """
    if config.name not in POLICIES:
        raise RLSFTError(f"Unknown policy {config.name!r}; choose one of {sorted(POLICIES)}.")
    options = {key: value for key, value in OmegaConf.to_container(config, resolve=True).items() if key != "name"}
    policy = POLICIES[config.name](
        observation_dim,
        action_dim,
        **checked_options(POLICIES[config.name], options, "policy", ("observation_dim", "action_dim")),
    )
    if trajectories is not None and getattr(policy, "normalize_observations", False):
        policy.fit_observation_normalizer(trajectories)
    return policy


@torch.no_grad()
def frozen_log_prob(policy: nn.Module, trajectories: TensorDict, chunk: int = 256) -> torch.Tensor:
    """log pi(a_t|s_t) [N, T] of a frozen policy (pi_ref) over a whole dataset or rollout, chunk by chunk,
    without gradients: computed once, since the policy and the data do not change."""
    device = next(policy.parameters()).device
    return torch.cat([policy.log_prob(part.to(device)).cpu() for part in trajectories.split(chunk)])


__all__ = ["ActorCritic", "GaussianMLP", "frozen_log_prob", "make_policy"]
