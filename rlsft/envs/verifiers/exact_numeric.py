"""Exact numeric answers, GSM8K style: the number after the last `####` (else the last number).

Numbers are compared exactly as fractions after removing thousands separators, `$` and `%`,
so "1,000", "1000.00" and "$1000" all equal the gold "#### 1000".
"""

from __future__ import annotations

import re
from fractions import Fraction

from rlsft.envs.verifiers.base import Verdict, Verifier

MARKER = "####"
NUMBER = re.compile(r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|-?\.[0-9]+")
MAX_DIGITS = 1000  # longer "numbers" are adversarial, not answers


def read_number(text: str) -> Fraction | None:
    """The number after the last `####`, else the last number in `text`, else None."""
    tail = text.rsplit(MARKER, 1)[-1]
    matches = NUMBER.findall(tail.replace("$", "").replace("%", "")) or NUMBER.findall(text)
    if not matches or len(matches[-1]) > MAX_DIGITS:
        return None
    return Fraction(matches[-1].replace(",", ""))


class ExactNumeric(Verifier):
    name = "exact_numeric"

    def __init__(self, format_reward: float = 0.0) -> None:
        self.format_reward = format_reward  # paid for a well-placed but wrong answer

    def verify_one(self, completion: str, answer: str) -> Verdict:
        gold = read_number(answer)
        if gold is None:
            raise ValueError(f"gold answer {answer[:80]!r} holds no number")
        predicted = read_number(completion)
        format_ok = MARKER in completion and NUMBER.search(completion.rsplit(MARKER, 1)[-1]) is not None
        success = predicted == gold
        reward = 1.0 if success else (self.format_reward if format_ok else 0.0)
        return Verdict(reward=reward, success=success, format_ok=format_ok, parse_error=predicted is None)
