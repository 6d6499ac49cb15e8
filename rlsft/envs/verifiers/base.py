"""What every verifier is: completions and gold answers in, one verdict per sample out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rlsft.registry import Registered


@dataclass(frozen=True)
class Verdict:
    """One sample's outcome; rates of success, format_ok and parse_error are logged."""

    reward: float
    success: bool  # the answer is right
    format_ok: bool  # the answer is where the task asked for it (e.g. after "####")
    parse_error: bool  # no answer could be read at all


class Verifier(Registered):
    """Base class; a subclass with a `name` registers itself for `verifier=<name>`.

    Subclasses implement `verify_one`; `__call__` verifies a batch (and may be overridden
    to run it elsewhere, as math equivalence does, in worker processes with a deadline).
    A gold answer the verifier cannot read is a data problem, not a training crash: every sample
    against it scores 0 with parse_error, and `gold_problem` says why, once, when data is loaded.
    """

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[Verifier]]] = {}

    def verify_one(self, completion: str, answer: str) -> Verdict:
        raise NotImplementedError

    def gold_problem(self, answer: str) -> str | None:
        """Why this gold answer cannot be read (every sample against it will score 0), or None."""
        return None

    def gold_problems(self, answers: Sequence[str]) -> list[str | None]:
        return [self.gold_problem(answer) for answer in answers]

    def __call__(self, completions: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        if len(completions) != len(answers):
            raise ValueError(f"{len(completions)} completions but {len(answers)} answers")
        return [self.verify_one(completion, answer) for completion, answer in zip(completions, answers)]
