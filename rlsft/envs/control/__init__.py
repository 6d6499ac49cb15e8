"""MuJoCo control through torchrl: a vectorised gymnasium env, deterministic evaluation, D4RL's normalised score."""

from rlsft.envs.control.mujoco import ControlEnv, env_dims, evaluate_policy, normalized_score

__all__ = ["ControlEnv", "env_dims", "evaluate_policy", "normalized_score"]
