"""rlsft's hydra configs, and the resolvers they use."""

from omegaconf import DictConfig, OmegaConf


def gradient_steps(rollout: DictConfig) -> int:
    """Gradient steps that `rollout.frames` environment steps buy an on-policy algorithm."""
    rollouts = max(1, rollout.frames // (rollout.num_envs * rollout.frames_per_env))
    return rollouts * rollout.epochs * rollout.minibatches


OmegaConf.register_new_resolver("rlsft.gradient_steps", gradient_steps, replace=True)
