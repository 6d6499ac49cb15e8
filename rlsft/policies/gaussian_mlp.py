"""The control policy of method.md §4: pi(a|s) = N(tanh(f(s)), exp(log_std)), log_std in [-5, 2]."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import torch
from tensordict import TensorDict
from torch import nn
from torch.distributions import Normal
from torchrl.modules import MLP

from rlsft.errors import RLSFTError
from rlsft.policies.base import Policy

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


PROGRAM = "policy.pt2"  # the exported deterministic policy


def mlp(in_features: int, out_features: int, hidden_sizes: Sequence[int], activation: str) -> MLP:
    if activation not in ACTIVATIONS:
        raise RLSFTError(f"Unknown activation {activation!r}; set policy.activation to one of {list(ACTIVATIONS)}.")
    if any(size < 1 for size in hidden_sizes):
        raise RLSFTError(f"policy.hidden_sizes={list(hidden_sizes)} holds a layer without units; give positive sizes.")
    return MLP(
        in_features=in_features,
        out_features=out_features,
        num_cells=list(hidden_sizes),
        activation_class=ACTIVATIONS[activation],
    )


def log_std_bounds(low: float, high: float) -> tuple[float, float]:
    """policy.log_std_min and policy.log_std_max, where the first is below the second, else one sentence."""
    if not low < high:  # NaN too
        raise RLSFTError(f"policy.log_std_min={low} must be below policy.log_std_max={high}; fix the override.")
    return low, high


def export_program(policy: nn.Module, observation_dim: int, folder: Path) -> dict[str, str]:
    """A control policy's forward (its deterministic action) as a torch.export program in `folder`, for any batch
    of observations [N, observation_dim]: `torch.export.load(path).module()(observation)`."""
    example = next(policy.parameters()).new_zeros(2, observation_dim)
    program = torch.export.export(
        policy.eval(), (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), strict=False
    )
    torch.export.save(program, folder / PROGRAM)
    return {"program": str(folder / PROGRAM), "load": f"torch.export.load({str(folder / PROGRAM)!r}).module()"}


class GaussianMLP(Policy):
    """MLP with a tanh mean and a state-independent log-std; log-probs on raw actions.

    Observations are standardised (unless `normalize_observations=False`) with the dataset's statistics, held as
    buffers so that they travel with every checkpoint. Which of the two serves a dataset better is measured, with
    its gains and its costs, in benchmarks/results/control/README.md.
    """

    name = "gaussian_mlp"
    in_keys = ("observation", "action", "mask")

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        hidden_sizes: Sequence[int] = (256, 256, 256),
        log_std_min: float = -5.0,
        log_std_max: float = 2.0,
        normalize_observations: bool = True,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.mean_net = mlp(observation_dim, action_dim, hidden_sizes, activation)
        self.log_std = nn.Parameter(torch.zeros(action_dim))
        self.log_std_min, self.log_std_max = log_std_bounds(log_std_min, log_std_max)
        self.normalize_observations = normalize_observations
        self.register_buffer("observation_mean", torch.zeros(observation_dim))
        self.register_buffer("observation_std", torch.ones(observation_dim))

    @property
    def observation_dim(self) -> int:
        return self.observation_mean.shape[-1]

    def fit_observation_normalizer(self, trajectories: TensorDict) -> None:
        """Set the standardisation statistics from the real steps of a dataset (eps as CORL)."""
        observations = trajectories["observation"][trajectories["mask"]]
        self.observation_mean.copy_(observations.mean(0))
        self.observation_std.copy_(observations.std(0) + 1e-3)

    def normalize(self, observation: torch.Tensor) -> torch.Tensor:
        if not self.normalize_observations:
            return observation
        return (observation - self.observation_mean) / self.observation_std

    def mean_action(self, observation: torch.Tensor) -> torch.Tensor:
        """The deterministic action used for evaluation: tanh of the network output."""
        return torch.tanh(self.mean_net(self.normalize(observation)).float())

    forward = mean_action

    def export(self, folder: Path) -> dict[str, str]:
        """The deterministic action (tanh of the mean, as evaluation acts): `export_program`."""
        return export_program(self, self.observation_dim, folder)

    def clipped_log_std(self) -> torch.Tensor:
        return self.log_std.clamp(self.log_std_min, self.log_std_max)

    def distribution(self, observation: torch.Tensor) -> Normal:
        """pi(.|s), for sampling actions."""
        mean = self.mean_action(observation)
        return Normal(mean, self.clipped_log_std().exp().expand_as(mean), validate_args=False)

    def log_prob(self, batch: TensorDict) -> torch.Tensor:
        """log pi(a_t|s_t) as [B, T], computed on the real steps only and zero on padding.

        The Gaussian density is written out so that log-std terms stay [action_dim]-sized
        instead of being expanded over every step, as torch.distributions.Normal would.
        """
        mask = batch["mask"]
        log_std = self.clipped_log_std()
        z = (batch["action"][mask] - self.mean_action(batch["observation"][mask])) * (-log_std).exp()
        steps = (-0.5 * z.pow(2) - log_std - _HALF_LOG_2PI).sum(-1)
        return steps.new_zeros(mask.shape).masked_scatter(mask, steps)
