"""MuJoCo v5 control through torchrl: environment specs and deterministic evaluation."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from tensordict import TensorDictBase
from tensordict.nn import TensorDictModuleBase
from torch import nn

from rlsft.envs.control.vector_env import VectorControlEnv, make_env
from rlsft.errors import RLSFTError


@dataclass(frozen=True)
class ControlEnv:
    """A MuJoCo env as its YAML describes it (configs/env/<name>.yaml): the typed form the lower layers take."""

    name: str
    id: str
    ref_min_score: float  # the returns that anchor D4RL's normalised score: 0 and 100
    ref_max_score: float
    max_episode_steps: int = 1000

    def __post_init__(self) -> None:
        scores = (self.ref_min_score, self.ref_max_score)
        if not can_normalize(*scores):
            raise RLSFTError(
                f"env.ref_min_score={scores[0]!r} and env.ref_max_score={scores[1]!r} must be two different finite"
                " numbers (the returns a normalised score calls 0 and 100); fix them."
            )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ControlEnv:
        return cls(**{field.name: config[field.name] for field in fields(cls) if field.name in config})


def env_dims(env_id: str) -> tuple[int, int]:
    """(observation dim, action dim) of a gymnasium env id."""
    env = make_env(env_id)
    dims = int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))
    env.close()
    return dims


class TensorFunction(TensorDictModuleBase):
    """Reads `in_key`, writes the function's outputs to `out_keys`: a TensorDictModule for
    one tensor function, without its generic argument dispatch (a tenth of sampling time)."""

    def __init__(self, function, in_key: str, out_keys: list[str]) -> None:
        super().__init__()
        self.function, self.in_keys, self.out_keys = function, [in_key], out_keys

    def forward(self, tensordict: TensorDictBase) -> TensorDictBase:
        outputs = self.function(tensordict.get(self.in_keys[0]))
        for key, output in zip(self.out_keys, outputs if isinstance(outputs, tuple) else (outputs,), strict=True):
            tensordict.set(key, output)
        return tensordict


def can_normalize(ref_min: object, ref_max: object) -> bool:
    """Whether two reference returns can anchor normalized_score: finite numbers, and different (they divide it)."""
    numbers = all(isinstance(score, int | float) and not isinstance(score, bool) for score in (ref_min, ref_max))
    return numbers and math.isfinite(ref_min) and math.isfinite(ref_max) and ref_min != ref_max


def normalized_score(returns: torch.Tensor, ref_min: float, ref_max: float) -> torch.Tensor:
    """D4RL normalised score: 100 * (R - R_min) / (R_max - R_min) (method.md §5)."""
    return 100.0 * (returns - ref_min) / (ref_max - ref_min)


@torch.no_grad()
def evaluate_policy(
    policy: nn.Module,
    env_id: str,
    episodes: int,
    seed: int,
    max_steps: int = 1000,
    envs_at_once: int = 25,
) -> torch.Tensor:
    """Undiscounted returns of `episodes` episodes with the policy's deterministic action.

    Episodes run `envs_at_once` at a time in one vector env; each env contributes its
    first episode (its steps up to and including its first done).
    """
    if max_steps < 1:
        raise RLSFTError(f"env.max_episode_steps={max_steps} leaves no step to evaluate; give it a positive value.")
    device = next(policy.parameters()).device
    actor = TensorFunction(policy.mean_action, "observation", ["action"])
    returns = []
    for start in range(0, episodes, envs_at_once):
        env = VectorControlEnv(env_id, min(envs_at_once, episodes - start))
        env.set_seed(seed + start)
        rollout = env.rollout(
            max_steps, actor, break_when_any_done=False, break_when_all_done=True, auto_cast_to_device=True
        ).to(device)
        env.close()
        if not torch.isfinite(rollout["action"]).all():  # NaN passes the action clipping, and MuJoCo then returns NaN
            raise RLSFTError(
                f"The policy's actions in {env_id} are not finite (its outputs overflow), so it cannot be evaluated;"
                " train it again with a lower learner.lr or a learner.grad_clip."
            )
        done = rollout["next", "done"].squeeze(-1).long()
        before_first_done = (done.cumsum(-1) - done) == 0
        returns.append((rollout["next", "reward"].squeeze(-1) * before_first_done).sum(-1))
    return torch.cat(returns).cpu()
