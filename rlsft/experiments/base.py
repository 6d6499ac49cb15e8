"""What the trainer needs from an experiment, whatever its domain, and what a domain is."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch
from omegaconf import DictConfig, ListConfig
from tensordict import TensorDict
from torch import nn

from rlsft.data import curate
from rlsft.errors import RLSFTError
from rlsft.learner import LearnerConfig
from rlsft.policies import frozen_log_prob
from rlsft.registry import Registered
from rlsft.sources.base import BatchSource
from rlsft.sources.rounds import IteratedSource
from rlsft.sources.trajectories import TrajectorySource

if TYPE_CHECKING:
    from rlsft.algorithms import Algorithm

Evaluate = Callable[[int], dict[str, float]]  # episodes (or held-out prompts) -> metrics


@dataclass
class Experiment:
    policy: nn.Module
    source: BatchSource
    learner_config: LearnerConfig  # sized: concrete steps and warm-up
    evaluate: Evaluate
    data: str  # what the batches come from, for labels and the summary
    score: str  # the evaluation metric the learning curve shows
    about: dict = field(default_factory=dict)  # extra summary entries; a callable is read when training ends
    metadata: dict = field(default_factory=dict)  # stored in every checkpoint


def curation_setting(curation: DictConfig) -> tuple[str, list]:
    """(by, levels) of an algorithm's `curation` settings, as `curate` takes them."""
    if not isinstance(curation.levels, ListConfig):  # list() of a lone number is a TypeError
        levels = curation.levels
        raise RLSFTError(
            f"algorithm.curation.levels={levels} must be a list; write algorithm.curation.levels=[{levels}]."
        )
    return curation.by, list(curation.levels)


class Domain(Registered):
    """A kind of env (configs/domain/<name>.yaml): how its runs get a policy, batches and an evaluation.

    `rlsft train` builds its experiment here and `rlsft evaluate` its policy and evaluation, so both
    see a domain through the same code. A subclass with a `name` registers itself.
    """

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[Domain]]] = {}

    def experiment(
        self, cfg: DictConfig, algorithm: Algorithm, learner_config: LearnerConfig, policy: nn.Module | None = None
    ) -> Experiment:
        """The policy to train, its batch source and evaluation, for `algorithm` as `cfg` configures it; the batch
        source is made for `policy` where one is given (a mix's later part, rlsft/experiments/configured.py)."""
        raise NotImplementedError

    def evaluated_policy(self, cfg: DictConfig, seed: int, metadata: dict) -> tuple[nn.Module, Evaluate]:
        """A policy shaped as a run of `cfg` trains it (its checkpoint's weights load into it), and its
        evaluation; `metadata` is what the run stored in its checkpoints (Experiment.metadata)."""
        raise NotImplementedError


def curated_source(
    trajectories: TensorDict,
    algorithm: Algorithm,
    learner_config: LearnerConfig,
    device: torch.device,
    every: int = 0,
    draw: Callable[[], TensorDict] | None = None,
    policy: nn.Module | None = None,
    curation: tuple[str, Sequence[float]] = ("none", ()),
) -> BatchSource:
    """The SFT family's batches: the curated `trajectories` (every=0), or iterated SFT: they are round 0, and
    every `every` steps `draw()` (the current policy's samples) curated by `curation` is the next round, with
    `ref_log_prob` under that policy where the loss reads it (pi_ref of a round: the policy that sampled it)."""
    sampling, batch_size, data_parallel = algorithm.sampling, learner_config.batch_size, learner_config.data_parallel
    if not every:
        return TrajectorySource(trajectories, sampling, batch_size, device, data_parallel)

    @torch.no_grad()
    def next_round() -> tuple[TensorDict, int]:
        drawn = draw()
        kept = curate(drawn, curation[0], list(curation[1]))
        if "ref_log_prob" in algorithm.in_keys:
            kept["ref_log_prob"] = frozen_log_prob(policy, kept)
        return kept, len(drawn)

    return IteratedSource(trajectories, next_round, every, sampling, batch_size, device, data_parallel)
