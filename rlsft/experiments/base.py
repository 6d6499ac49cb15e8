"""What the trainer needs from an experiment, whatever its domain, and what a domain is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from omegaconf import DictConfig
from torch import nn

from rlsft.learner import LearnerConfig
from rlsft.registry import Registered
from rlsft.sources.base import BatchSource

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
    about: dict = field(default_factory=dict)  # extra summary entries
    metadata: dict = field(default_factory=dict)  # stored in every checkpoint


class Domain(Registered):
    """A kind of env (configs/domain/<name>.yaml): how its runs get a policy, batches and an evaluation.

    `rlsft train` builds its experiment here and `rlsft evaluate` its policy and evaluation, so both
    see a domain through the same code. A subclass with a `name` registers itself.
    """

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[Domain]]] = {}

    def experiment(self, cfg: DictConfig, algorithm: Algorithm, learner_config: LearnerConfig) -> Experiment:
        """The policy to train, its batch source and evaluation, for `algorithm` as `cfg` configures it."""
        raise NotImplementedError

    def evaluated_policy(self, cfg: DictConfig, seed: int, metadata: dict) -> tuple[nn.Module, Evaluate]:
        """A policy shaped as a run of `cfg` trains it (its checkpoint's weights load into it), and its
        evaluation; `metadata` is what the run stored in its checkpoints (Experiment.metadata)."""
        raise NotImplementedError
