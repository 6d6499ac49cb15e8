"""Mathematical equivalence through math-verify, in worker processes with a hard deadline.

math-verify is asymmetric: `verify(gold, prediction)`, gold first. Its own timeouts use
signals, which only work in a main thread, and sympy can still hang on a pathological
answer; so every sample runs in a spawned worker process, and a sample that misses the
deadline is scored wrong (parse_error) and its worker pool is replaced.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence

from rlsft.envs.verifiers.base import Verdict, Verifier


def _verify(completion: str, answer: str) -> tuple[bool, bool, bool]:
    from math_verify import parse, verify

    gold, predicted = parse(answer), parse(completion)
    if not gold:
        raise ValueError(f"gold answer {answer[:80]!r} cannot be parsed")
    boxed = "\\boxed" in completion
    return bool(predicted) and verify(gold, predicted), boxed, not predicted


class MathEquivalence(Verifier):
    name = "math_equivalence"

    def __init__(self, deadline_seconds: float = 10.0, workers: int = 2) -> None:
        self.deadline_seconds, self.workers = deadline_seconds, workers
        self.pool = None
        self.deadline_misses = 0  # samples cut off so far

    def __call__(self, completions: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        if len(completions) != len(answers):
            raise ValueError(f"{len(completions)} completions but {len(answers)} answers")
        pairs, verdicts = list(zip(completions, answers)), []
        while len(verdicts) < len(pairs):
            pool = self.started_pool()
            pending = [pool.apply_async(_verify, pair) for pair in pairs[len(verdicts) :]]
            for result in pending:
                try:
                    success, format_ok, parse_error = result.get(timeout=self.deadline_seconds)
                except multiprocessing.TimeoutError:  # a hung worker cannot be interrupted:
                    self.close()  # drop the pool, score the sample wrong, resubmit the rest
                    self.deadline_misses += 1
                    verdicts.append(Verdict(0.0, False, False, True))
                    break
                verdicts.append(Verdict(float(success), success, format_ok, parse_error))
        return verdicts

    def started_pool(self):
        """The worker pool, started and warmed up (imports done) outside any deadline."""
        if self.pool is None:
            self.pool = multiprocessing.get_context("spawn").Pool(self.workers)
            self.pool.apply(_verify, ("1", "1"))
        return self.pool

    def verify_one(self, completion: str, answer: str) -> Verdict:
        return self([completion], [answer])[0]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None
