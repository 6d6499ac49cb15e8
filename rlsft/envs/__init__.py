"""Environments: MuJoCo control through torchrl."""

from rlsft.envs.mujoco import env_dims, evaluate_policy, normalized_score

__all__ = ["env_dims", "evaluate_policy", "normalized_score"]
