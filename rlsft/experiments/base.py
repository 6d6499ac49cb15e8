"""What the trainer needs from an experiment, whatever its domain."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from rlsft.learner import LearnerConfig
from rlsft.loop import BatchSource


@dataclass
class Experiment:
    policy: nn.Module
    source: BatchSource
    learner_config: LearnerConfig  # sized: concrete steps and warm-up
    evaluate: Callable[[int], dict[str, float]]  # episodes (or held-out prompts) -> metrics
    data: str  # what the batches come from, for labels and the summary
    score: str  # the evaluation metric the learning curve shows
    about: dict = field(default_factory=dict)  # extra summary entries
    metadata: dict = field(default_factory=dict)  # stored in every checkpoint
