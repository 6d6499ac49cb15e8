"""Format only: reward 1 when the completion matches a regular expression (e.g. a boxed answer)."""

from __future__ import annotations

import re

from rlsft.envs.verifiers.base import Verdict, Verifier


class AnswerFormat(Verifier):
    name = "answer_format"

    def __init__(self, pattern: str = r"\\boxed\{[^{}]+\}|####\s*\S+") -> None:
        try:
            self.pattern = re.compile(pattern, re.DOTALL)
        except re.error as error:
            raise ValueError(f"verifier pattern {pattern!r} is not a regular expression ({error})") from error

    def verify_one(self, completion: str, answer: str) -> Verdict:
        ok = self.pattern.search(completion) is not None
        return Verdict(reward=float(ok), success=ok, format_ok=ok, parse_error=False)
