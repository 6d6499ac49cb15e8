"""Exact numeric answers, GSM8K style: the first number after the last `####` (else the last number).

Numbers are compared exactly as fractions after removing thousands separators, `$` and `%`,
so "1,000", "1000.00" and "$1000" all equal the gold "#### 1000"; a plain fraction, `\\frac{1}{2}`
or `1/2`, is the number it names (0.5). A gold answer that holds no number (`inf`) scores every
completion 0 with parse_error; `gold_problem` reports it when the dataset is loaded.
"""

from __future__ import annotations

import re
from collections import deque
from fractions import Fraction

from rlsft.envs.verifiers.base import Verdict, Verifier

MARKER = "####"
DECIMAL = r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?|-?\.[0-9]+"
# A fraction first, so "1/2" is one number, not 2; the groups are \frac's or a/b's parts, or a lone number.
NUMBER = re.compile(rf"(-?)\\[dt]?frac\{{({DECIMAL})\}}\{{({DECIMAL})\}}|({DECIMAL})\s*/\s*({DECIMAL})|({DECIMAL})")
NUMBER_CHARS = re.compile(r"[0-9,.\-/\\dtfrac{}\s]*")  # a run of the characters a NUMBER match can hold
MAX_DIGITS = 1000  # longer "numbers" are adversarial, not answers


def value(match: tuple[str, ...]) -> Fraction | None:
    """The number one NUMBER match names; None for an overlong number or a zero denominator."""
    sign, frac_top, frac_bottom, top, bottom, lone = match
    numerator, denominator = (frac_top, frac_bottom) if frac_top else (top, bottom) if top else (lone, "1")
    if len(numerator) + len(denominator) > MAX_DIGITS or Fraction(denominator.replace(",", "")) == 0:
        return None
    number = Fraction(numerator.replace(",", "")) / Fraction(denominator.replace(",", ""))
    return -number if sign else number


def last_match(text: str) -> tuple[str, ...] | None:
    """The groups of NUMBER's last match in `text`, scanning only the stretch that can hold it.

    Every digit lies in some match, so the last match holds the last digit; a match holds only NUMBER_CHARS,
    so it lies in the stretch of them around that digit (and ends at most one `}` after it), and no match of a
    scan from the text's start crosses into that stretch. A megabyte of prose is read around its last digit alone.
    """
    last_digit = max(map(text.rfind, "0123456789"))
    if last_digit < 0:
        return None
    start = last_digit + 1 - NUMBER_CHARS.match(text[last_digit::-1]).end()
    found = deque(NUMBER.finditer(text, start, last_digit + 2), maxlen=1)
    return found[0].groups("") if found else None  # "" for a group that did not take part, as findall gives


def first_match(text: str) -> tuple[str, ...] | None:
    """The groups of NUMBER's first match in `text`, scanning from the stretch that can hold it.

    As in `last_match`: the first match holds the first digit, so it starts in the stretch of NUMBER_CHARS
    before that digit; the prose before that stretch is skipped by str.find, not stepped through by the regex.
    """
    digits = [index for index in map(text.find, "0123456789") if index >= 0]
    if not digits:
        return None
    first_digit = min(digits)
    found = NUMBER.search(text, first_digit + 1 - NUMBER_CHARS.match(text[first_digit::-1]).end())
    return found.groups("") if found else None


def read_number(text: str) -> Fraction | None:
    """The first number after the last `####` (the answer; text may follow it, as lm-eval's GSM8K filter reads
    it), else the last number in `text`, else None."""
    _, marker, tail = text.rpartition(MARKER)
    tail = tail.replace("$", "").replace("%", "")
    # Without a marker the tail is the text.
    match = (first_match(tail) or last_match(text)) if marker else last_match(tail)
    return value(match) if match else None


class ExactNumeric(Verifier):
    name = "exact_numeric"

    def __init__(self, format_reward: float = 0.0) -> None:
        self.format_reward = format_reward  # paid for a well-placed but wrong answer

    def gold_problem(self, answer: str) -> str | None:
        return None if read_number(answer) is not None else "it holds no number"

    def verify_one(self, completion: str, answer: str) -> Verdict:
        gold, predicted = read_number(answer), read_number(completion)
        format_ok = MARKER in completion and first_match(completion.rsplit(MARKER, 1)[-1]) is not None
        success = gold is not None and predicted == gold
        reward = 1.0 if success else (self.format_reward if format_ok else 0.0)
        return Verdict(
            reward=reward, success=success, format_ok=format_ok, parse_error=gold is None or predicted is None
        )
