"""Mathematical equivalence through math-verify, in worker processes with a hard per-sample deadline.

sympy can take seconds, or forever, on a hostile completion (power towers, factorial chains, huge
polynomials), and a GRPO batch waits for its slowest sample; math-verify's own timeouts use signals,
which only work in a main thread. So every sample runs in a worker process (math_worker.py) and one that
misses `deadline_seconds` is scored wrong (parse_error); only its worker is replaced. The default,
1.5 s, is 2x the slowest (0.72 s) and 3x the p99 of 560 genuine GSM8K/MATH-style pairs timed on a
loaded 2-core machine (benchmarks/results/verifier_latency.md).

Only the last `max_completion_chars` characters of a completion are read, from a line start (its final
answer is at its end; math-verify's cost grows with the text).

math-verify's numeric comparison (`float_rounding`, `numeric_precision`) judges values within about
10^-numeric_precision equal: `\\sqrt{2} + 10^{-30}` passes for `\\sqrt{2}`, and so would a power tower
that far from its gold. No genuine answer is that close to a wrong one; raise numeric_precision to tighten.

A gold answer math-verify cannot read scores every sample wrong with parse_error; `gold_problems` finds such answers when a dataset is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rlsft.envs.verifiers.base import Verdict, Verifier
from rlsft.envs.verifiers.deadline_workers import DeadlineWorkers

WORKER = Path(__file__).with_name("math_worker.py")


class MathEquivalence(Verifier):
    name = "math_equivalence"

    def __init__(
        self,
        deadline_seconds: float = 1.5,
        workers: int = 2,
        max_completion_chars: int = 8000,
        startup_seconds: float = 60.0,
        float_rounding: int = 6,
        numeric_precision: int = 15,
    ) -> None:
        if deadline_seconds <= 0 or startup_seconds <= 0 or workers < 1 or max_completion_chars < 1:
            raise ValueError(
                "deadline_seconds and startup_seconds must be positive, workers and max_completion_chars at least 1"
            )
        self.deadline_seconds, self.workers, self.startup_seconds = deadline_seconds, workers, startup_seconds
        self.max_completion_chars = max_completion_chars
        self.verify_options = {"float_rounding": float_rounding, "numeric_precision": numeric_precision}
        self.pool: DeadlineWorkers | None = None
        self.deadline_misses = 0  # samples cut off so far

    def __call__(self, completions: Sequence[str], answers: Sequence[str]) -> list[Verdict]:
        if len(completions) != len(answers):
            raise ValueError(f"{len(completions)} completions but {len(answers)} answers")
        tails = [self.tail(completion) for completion in completions]
        requests = [("judge", tail, answer, self.verify_options) for tail, answer in zip(tails, answers)]
        # (success, parse_error) from the worker; a sample the deadline cut off is wrong and unread (None). Its
        # format, a `\\boxed` answer, is read here for every sample, the cut-off ones too.
        return [
            Verdict(float(success), success, "\\boxed" in tail, parse_error)
            for tail, (success, parse_error) in zip(tails, (result or (False, True) for result in self.run(requests)))
        ]

    def tail(self, completion: str) -> str:
        """The last `max_completion_chars` characters, from a line start when cut, so no `$...$` is split."""
        if len(completion) <= self.max_completion_chars:
            return completion
        tail = completion[-self.max_completion_chars :]
        return tail.partition("\n")[2] or tail

    def verify_one(self, completion: str, answer: str) -> Verdict:
        return self([completion], [answer])[0]

    def gold_problems(self, answers: Sequence[str]) -> list[str | None]:
        problems = {None: f"math-verify did not read it within deadline_seconds={self.deadline_seconds:g}"}
        problems[False] = "math-verify reads no answer in it; write it as LaTeX math, e.g. $...$ or \\boxed{...}"
        return [problems.get(readable) for readable in self.run([("readable", answer) for answer in answers])]

    def gold_problem(self, answer: str) -> str | None:
        return self.gold_problems([answer])[0]

    def run(self, requests: list[tuple]) -> list:
        """The workers' answers (None where the deadline cut one off), starting them on first use."""
        if self.pool is None:
            self.pool = DeadlineWorkers(self.name, WORKER, self.workers, self.deadline_seconds, self.startup_seconds)
        misses = self.pool.misses
        answers = self.pool.map(requests)
        self.deadline_misses += self.pool.misses - misses
        return answers

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None
