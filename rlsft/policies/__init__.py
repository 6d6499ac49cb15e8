"""Policies: anything with `log_prob(batch) -> [B, T]` over the shared trajectory batch."""

from __future__ import annotations

from omegaconf import DictConfig

from rlsft.errors import RLSFTError
from rlsft.policies.gaussian_mlp import GaussianMLP


def make_policy(config: DictConfig, observation_dim: int, action_dim: int) -> GaussianMLP:
    """The policy named by `policy.name`, sized for the env."""
    if config.name != "gaussian_mlp":
        raise RLSFTError(f"Unknown policy {config.name!r} for control; use policy=gaussian_mlp.")
    return GaussianMLP(
        observation_dim,
        action_dim,
        hidden_sizes=list(config.hidden_sizes),
        log_std_min=config.log_std_min,
        log_std_max=config.log_std_max,
        normalize_observations=config.normalize_observations,
    )


__all__ = ["GaussianMLP", "make_policy"]
