"""Policies, registered by name: one file each, anything with `log_prob(batch) -> [B, T]`."""

from __future__ import annotations

import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from torch import nn

from rlsft.policies.actor_critic import ActorCritic
from rlsft.policies.base import Policy
from rlsft.policies.gaussian_mlp import GaussianMLP
from rlsft.registry import build, import_all

import_all(__name__, __path__)


def make_policy(config: DictConfig, trajectories: TensorDict | None = None, **supplied: int) -> Policy:
    """The policy named by `policy.name`; the other keys are its arguments, `supplied` the env's sizes
    (`observation_dim`, `action_dim`) where it has them.

    Given `trajectories`, a policy that standardises observations takes its statistics from them.
    """
    member = Policy.registry.get(config.name)  # an unknown name is build's error
    skipped = ("name", *(member.config_only if member else ()))
    options = {key: value for key, value in OmegaConf.to_container(config, resolve=True).items() if key not in skipped}
    policy = build(Policy, "policy", config.name, options, "policy", **supplied)
    if trajectories is not None and getattr(policy, "normalize_observations", False):
        policy.fit_observation_normalizer(trajectories)
    return policy


@torch.no_grad()
def frozen_log_prob(policy: nn.Module, trajectories: TensorDict, chunk: int = 256) -> torch.Tensor:
    """log pi(a_t|s_t) [N, T] of a frozen policy (pi_ref) over a whole dataset or rollout, chunk by chunk,
    without gradients: computed once, since the policy and the data do not change."""
    device = next(policy.parameters()).device
    return torch.cat([policy.log_prob(part.to(device)).cpu() for part in trajectories.split(chunk)])


__all__ = ["ActorCritic", "GaussianMLP", "Policy", "frozen_log_prob", "make_policy"]
