"""Verifiers on real answer strings: right, wrong, malformed, huge, adversarial, and a deadline."""

from __future__ import annotations

import pytest

from rlsft.envs.verifiers import Verdict, make_verifier
from rlsft.errors import RLSFTError

GSM8K_GOLD = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72"

NUMERIC_CASES = [
    # completion, success, format_ok, parse_error
    ("She sold 48 + 24 = 72 clips.\n#### 72", True, True, False),
    ("#### 72.00", True, True, False),
    ("The answer is $72", True, False, False),  # the last number, no marker
    ("#### 71", False, True, False),
    ("#### 72\nWait, no: #### 73", False, True, False),  # the last marker counts
    ("I think it is seventy-two.", False, False, True),
    ("#### " + "9" * 5000, False, True, True),  # a 5000-digit "number" is not read
    ("####", False, False, True),
    ("72 is close but #### -72", False, True, False),
    ("", False, False, True),
]


@pytest.mark.parametrize("completion, success, format_ok, parse_error", NUMERIC_CASES)
def test_exact_numeric_table(completion: str, success: bool, format_ok: bool, parse_error: bool) -> None:
    [verdict] = make_verifier("exact_numeric", {})([completion], [GSM8K_GOLD])
    assert (verdict.success, verdict.format_ok, verdict.parse_error) == (success, format_ok, parse_error)
    assert verdict.reward == float(success)


def test_exact_numeric_thousands_separators_and_format_reward() -> None:
    verifier = make_verifier("exact_numeric", {"format_reward": 0.1})
    right, wrong = verifier(["So #### 1,234", "#### 1,235"], ["#### 1234", "#### 1234"])
    assert right == Verdict(1.0, True, True, False)
    assert wrong.reward == 0.1 and not wrong.success


MATH_CASES = [
    ("The answer is $\\boxed{\\frac{1}{2}}$", "$\\frac{1}{2}$", True),
    ("So we get $0.5$", "$\\frac{1}{2}$", True),
    ("$\\boxed{(x+1)^2}$", "$x^2+2x+1$", True),
    ("$\\boxed{41}$", "$42$", False),
    ("garbage ))) {{", "$3$", False),
]


@pytest.fixture(scope="module")
def math_verifier():
    verifier = make_verifier("math_equivalence", {"deadline_seconds": 20.0, "workers": 1})
    yield verifier
    verifier.close()


def test_math_equivalence_table(math_verifier) -> None:
    completions, golds, expected = zip(*MATH_CASES)
    verdicts = math_verifier(list(completions), list(golds))
    assert [v.success for v in verdicts] == list(expected)
    assert verdicts[0].format_ok and not verdicts[1].format_ok  # boxed vs not
    assert verdicts[-1].parse_error


def test_math_equivalence_gold_goes_first(math_verifier) -> None:
    # math-verify is asymmetric; an interval prediction never equals a plain gold number.
    [verdict] = math_verifier(["$\\boxed{[1, 2]}$"], ["$1$"])
    assert not verdict.success


def test_a_pathological_answer_cannot_hang_training() -> None:
    """math-verify spends ~5 s parsing this; the 1 s deadline cuts it off and the next sample still runs."""
    verifier = make_verifier("math_equivalence", {"deadline_seconds": 1.0, "workers": 1})
    slow = "$" + "+".join(f"x^{{{i}}}" for i in range(3000)) + "$"
    hung, fine = verifier([slow, "$\\boxed{2}$"], ["$x$", "$2$"])
    verifier.close()
    assert verifier.deadline_misses == 1  # cut off by our deadline, not by math-verify's own 5 s
    assert hung == Verdict(0.0, False, False, True)
    assert fine.success  # the rest of the batch went to a fresh pool


def test_answer_format_and_user_callable() -> None:
    formats = make_verifier("answer_format", {})(["so \\boxed{7}", "#### 7", "seven"], ["7"] * 3)
    assert [v.format_ok for v in formats] == [True, True, False]
    custom = make_verifier("user_callable", {"function": "operator:eq"})(["7", "8"], ["7", "7"])
    assert [v.reward for v in custom] == [1.0, 0.0]
    assert [v.success for v in custom] == [True, False] and all(v.format_ok and not v.parse_error for v in custom)


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("exact_numerik", {}, "Unknown verifier 'exact_numerik'"),
        ("user_callable", {"function": "no_such_module:f"}, "cannot import 'no_such_module:f'"),
        ("answer_format", {"pattern": "(unclosed"}, "is not a regular expression"),
        ("exact_numeric", {"bonus": 1}, "Bad options for verifier 'exact_numeric'"),
    ],
)
def test_bad_verifier_config_is_explained(name: str, options: dict, message: str) -> None:
    with pytest.raises(RLSFTError, match=message):
        make_verifier(name, options)
