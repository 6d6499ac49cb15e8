"""Exact numeric answers, GSM8K style: the number after the last `####` (else the last number).

Numbers are compared exactly as fractions after removing thousands separators, `$` and `%`,
so "1,000", "1000.00" and "$1000" all equal the gold "#### 1000"; a plain fraction, `\\frac{1}{2}`
or `1/2`, is the number it names (0.5). A gold answer that holds no number (`inf`) scores every
completion 0 with parse_error; `gold_problem` reports it when the dataset is loaded.
"""

from __future__ import annotations

import re
from fractions import Fraction

from rlsft.envs.verifiers.base import Verdict, Verifier

MARKER = "####"
DECIMAL = r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|-?\.[0-9]+"
# A fraction first, so "1/2" is one number, not 2; the groups are \frac's or a/b's parts, or a lone number.
NUMBER = re.compile(rf"(-?)\\[dt]?frac\{{({DECIMAL})\}}\{{({DECIMAL})\}}|({DECIMAL})\s*/\s*({DECIMAL})|({DECIMAL})")
MAX_DIGITS = 1000  # longer "numbers" are adversarial, not answers


def value(match: tuple[str, ...]) -> Fraction | None:
    """The number one NUMBER match names; None for an overlong number or a zero denominator."""
    sign, frac_top, frac_bottom, top, bottom, lone = match
    numerator, denominator = (frac_top, frac_bottom) if frac_top else (top, bottom) if top else (lone, "1")
    if len(numerator) + len(denominator) > MAX_DIGITS or Fraction(denominator.replace(",", "")) == 0:
        return None
    number = Fraction(numerator.replace(",", "")) / Fraction(denominator.replace(",", ""))
    return -number if sign else number


def read_number(text: str) -> Fraction | None:
    """The number after the last `####`, else the last number in `text`, else None."""
    tail = text.rsplit(MARKER, 1)[-1]
    matches = NUMBER.findall(tail.replace("$", "").replace("%", "")) or NUMBER.findall(text)
    return value(matches[-1]) if matches else None


class ExactNumeric(Verifier):
    name = "exact_numeric"

    def __init__(self, format_reward: float = 0.0) -> None:
        self.format_reward = format_reward  # paid for a well-placed but wrong answer

    def gold_problem(self, answer: str) -> str | None:
        return None if read_number(answer) is not None else "it holds no number"

    def verify_one(self, completion: str, answer: str) -> Verdict:
        gold, predicted = read_number(answer), read_number(completion)
        format_ok = MARKER in completion and NUMBER.search(completion.rsplit(MARKER, 1)[-1]) is not None
        success = gold is not None and predicted == gold
        reward = 1.0 if success else (self.format_reward if format_ok else 0.0)
        return Verdict(
            reward=reward, success=success, format_ok=format_ok, parse_error=gold is None or predicted is None
        )
