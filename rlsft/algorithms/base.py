"""What every algorithm is: a loss over the shared trajectory batch, plus optional hooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
from tensordict import TensorDict
from torch import nn

from rlsft.distributed import average_over_ranks
from rlsft.errors import RLSFTError, did_you_mean
from rlsft.registry import Registered

REDUCTIONS = ("trajectory_mean", "token_mean")


def check_reduction(reduction: str) -> None:
    """Refuses a `reduction` that `nll_loss` does not know, in the words of the config option that sets it."""
    if reduction not in REDUCTIONS:
        raise RLSFTError(
            f"Unknown reduction {reduction!r}{did_you_mean(reduction, list(REDUCTIONS))}; set"
            f" algorithm.options.reduction to one of {list(REDUCTIONS)}."
        )


@dataclass
class LossOutput:
    loss: torch.Tensor
    metrics: dict[str, torch.Tensor] = field(default_factory=dict)


class Algorithm(Registered, nn.Module):
    """Base class; a subclass with a `name` registers itself for `algorithm=<name>`.

    Class attributes say what the trainer must provide:
      source: "dataset" (offline trajectories) or "rollouts" (fresh on-policy batches).
      in_keys: the batch keys its loss reads itself (the policy's own are Policy.in_keys), checked
        against the batch source's keys before training, as torchrl's losses declare theirs;
        `ref_log_prob` [B, T] (log pi_ref) is one the experiment computes when an algorithm reads it.
      init_from_reference: start from pi_ref (BC on the full dataset) instead of scratch.
      sampling: "uniform", or "quality" for the SFT(Q) multiset (method.md §2).
      domains: the kinds of env it runs on ("control": MuJoCo, "text": verifiable text tasks).
    Its module state (e.g. the q network) is saved and restored with every checkpoint.
    """

    name: ClassVar[str]
    source: ClassVar[str] = "dataset"
    in_keys: tuple[str, ...] = ("mask",)  # a class attribute, or a property where options decide (GRPO's KL)
    init_from_reference: ClassVar[bool] = False
    sampling: ClassVar[str] = "uniform"
    domains: ClassVar[tuple[str, ...]] = ("control", "text")
    registry: ClassVar[dict[str, type[Algorithm]]] = {}

    def attach(self, policy: nn.Module) -> None:
        """Called once with the policy to train, before any checkpoint is restored."""

    def parameter_groups(self, parameters: list[nn.Parameter]) -> list[dict]:
        """Optimiser groups for the parameters it trains beside the policy's (AWR's value function): one at the
        learner's settings, unless a subclass gives them their own (SAC's critics, at q_lr)."""
        return [{"params": parameters}] if parameters else []

    def before_step(self, policy: nn.Module, step: int) -> None:
        """Called before each gradient step's loss (e.g. to update q)."""

    def loss(self, policy: nn.Module, batch: TensorDict) -> LossOutput:
        raise NotImplementedError


def nll_loss(
    log_prob: torch.Tensor,
    mask: torch.Tensor,
    weight: torch.Tensor | None = None,
    reduction: str = "trajectory_mean",
) -> torch.Tensor:
    """-sum_i w_i log p(tau_i) over the real steps, reduced as method.md §4 states.

    log_prob, mask: [B, T]; weight: None, per trajectory [B], or per step [B, T].
      trajectory_mean: mean over the batch of (w_i * per-trajectory mean NLL)   (control)
      token_mean:      sum_i sum_t w_it NLL_it / total real steps                (LLM)
    """
    check_reduction(reduction)
    nll = -log_prob * mask
    if weight is not None:
        nll = nll * (weight.unsqueeze(-1) if weight.dim() == 1 else weight)
    if reduction == "trajectory_mean":
        return (nll.sum(-1) / mask.sum(-1).clamp(min=1)).mean()
    return nll.sum() / real_steps(mask)  # token_mean


def real_steps(mask: torch.Tensor) -> torch.Tensor:
    """A token mean's denominator: the real steps of `mask`, split over ranks the mean over the ranks, so that
    the ranks' averaged losses are the global batch's token mean; at least 1. PPO and GRPO take it once a batch."""
    return average_over_ranks(mask.sum()).clamp(min=1)
