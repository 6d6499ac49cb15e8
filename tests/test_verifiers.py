"""Verifiers on real answer strings: right, wrong, malformed, huge, adversarial, and a deadline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlsft.envs.verifiers import Verdict, make_verifier
from rlsft.envs.verifiers.exact_numeric import NUMBER, first_match, last_match
from rlsft.errors import RLSFTError

GSM8K_GOLD = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72"

NUMERIC_CASES = [
    # completion, success, format_ok, parse_error
    ("She sold 48 + 24 = 72 clips.\n#### 72", True, True, False),
    ("#### 72.00", True, True, False),
    ("The answer is $72", True, False, False),  # the last number, no marker
    ("#### 71", False, True, False),
    ("#### 72\nWait, no: #### 73", False, True, False),  # the last marker counts
    ("It is 72.\n#### 72\n\nQuestion 2: what is 1 + 1?", True, True, False),  # the first number after it
    ("#### 72 (48 + 24)", True, True, False),
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


def test_math_workers_sent_sigterm_with_the_job_still_judge_the_steps_answers() -> None:
    """A scheduler (SLURM) sends SIGTERM to every process of a job: the run finishes its step before it stops
    (rlsft/stopping.py), and a worker that ended at once scored that step's answers wrong."""
    verifier = make_verifier("math_equivalence", {"deadline_seconds": 20.0, "workers": 2})
    assert verifier(["$\\boxed{2}$"], ["$2$"])[0].success  # the workers are up
    for worker in verifier.pool.workers:
        os.kill(worker.process.pid, signal.SIGTERM)
    time.sleep(0.5)  # time to die, had they not been told to leave it to the verifier
    verdicts = verifier(["$\\boxed{2}$", "$\\frac{1}{2}$"], ["$2$", "$0.5$"])
    verifier.close()
    assert [verdict.success for verdict in verdicts] == [True, True] and verifier.deadline_misses == 0


def test_a_worker_that_died_idle_is_replaced_before_it_is_given_a_request() -> None:
    """Killed between batches (for memory), its pipe broke the next batch with BrokenPipeError."""
    verifier = make_verifier("math_equivalence", {"deadline_seconds": 20.0, "workers": 1})
    assert verifier(["$\\boxed{2}$"], ["$2$"])[0].success
    dead = verifier.pool.workers[0].process
    dead.kill()
    dead.wait()
    verdicts = verifier(["$\\boxed{2}$", "$\\frac{1}{2}$"], ["$2$", "$0.5$"])
    verifier.close()
    assert [verdict.success for verdict in verdicts] == [True, True] and verifier.deadline_misses == 0


def test_a_pathological_answer_cannot_hang_training() -> None:
    """math-verify spends ~5 s parsing this; the 1 s deadline cuts it off and the next sample still runs."""
    verifier = make_verifier("math_equivalence", {"deadline_seconds": 1.0, "workers": 1, "max_completion_chars": 10**6})
    slow = "$" + "+".join(f"x^{{{i}}}" for i in range(3000)) + "$"
    hung, fine = verifier([slow, "$\\boxed{2}$"], ["$x$", "$2$"])
    verifier.close()
    assert verifier.deadline_misses == 1  # cut off by our deadline, not by math-verify's own 5 s
    assert hung == Verdict(0.0, False, False, True)
    assert fine.success  # the rest of the batch went to a fresh worker


def test_a_sample_cut_off_by_the_deadline_keeps_its_format() -> None:
    """Its answer is not judged, but a `\\boxed` answer is still where the task asked for it."""
    verifier = make_verifier("math_equivalence", {"deadline_seconds": 1.0, "workers": 1, "max_completion_chars": 10**6})
    power_sum = "+".join(f"x^{{{i}}}" for i in range(3000))  # math-verify spends seconds on it
    boxed, plain = verifier([f"$\\boxed{{{power_sum}}}$", f"${power_sum}$"], ["$x$", "$x$"])
    verifier.close()
    assert verifier.deadline_misses == 2
    assert boxed == Verdict(0.0, False, True, True) and plain == Verdict(0.0, False, False, True)


def test_only_a_completions_tail_is_read() -> None:
    """The same 32k-character answer, cut to its last 8000 characters (from a line start), is read in time."""
    verifier = make_verifier("math_equivalence", {"deadline_seconds": 1.0, "workers": 1})
    slow = "$" + "+".join(f"x^{{{i}}}" for i in range(3000)) + "$"
    long_right = "Some working.\n" * 1000 + "So the answer is $\\boxed{2}$."
    verdicts = verifier([slow, long_right, "$\\boxed{2}$"], ["$x$", "$2$", "$2$"])
    verifier.close()
    assert verifier.deadline_misses == 0 and [v.success for v in verdicts] == [False, True, True]
    assert verifier.tail("a\n" + "b" * 7998 + "\nc") == "c"  # the cut falls on a line start


def test_bare_latex_and_inf_gold_answers_are_read(math_verifier) -> None:
    golds = ["\\frac{\\sqrt{3}}{2}", "inf", "2\\sqrt{3}", "(-\\infty, 3)", "18 dollars"]
    completions = [
        "$\\boxed{\\frac{\\sqrt{3}}{2}}$",
        "$\\boxed{\\infty}$",
        "$\\boxed{\\sqrt{12}}$",
        "$\\boxed{(-\\infty,3)}$",
        "18",
    ]
    assert [v.success for v in math_verifier(completions, golds)] == [True] * 5
    assert not math_verifier(["$\\boxed{2}$"], ["2\\sqrt{3}"])[0].success  # read as 2 sqrt 3, not as its 2
    assert math_verifier.gold_problems(golds) == [None] * 5


def test_an_unreadable_gold_scores_wrong_and_is_reported(math_verifier) -> None:
    assert math_verifier(["$\\boxed{1}$"], [""]) == [Verdict(0.0, False, True, True)]
    assert "math-verify reads no answer" in math_verifier.gold_problem("")
    exact = make_verifier("exact_numeric", {})
    assert exact(["#### 7"], ["inf"]) == [Verdict(0.0, False, True, True)]
    assert exact.gold_problem("inf") == "it holds no number" and exact.gold_problem("#### 7") is None
    assert make_verifier("answer_format", {}).gold_problem("anything") is None


@pytest.mark.parametrize(
    "completion, gold, success",
    [
        ("#### \\frac{1}{2}", "#### 0.5", True),
        ("The answer is 1/2.", "0.5", True),
        ("#### 3 / 4", "#### 0.75", True),
        ("#### -\\dfrac{3}{4}", "-0.75", True),
        ("#### 2", "#### 4/2", True),
        ("#### 1/3", "#### 0.333", False),  # exact: a fraction is not rounded
        ("#### 1/0", "#### 1", False),
    ],
)
def test_exact_numeric_reads_plain_fractions_exactly(completion: str, gold: str, success: bool) -> None:
    assert make_verifier("exact_numeric", {})([completion], [gold])[0].success == success


def test_a_script_without_a_main_guard_is_verified(tmp_path) -> None:
    """A user's script at top level, no `if __name__ == "__main__":`: the workers never re-run it."""
    script = tmp_path / "score.py"
    script.write_text(
        "from rlsft.envs.verifiers import make_verifier\n"
        "verifier = make_verifier('math_equivalence', {'workers': 1})\n"
        "print('verdict', verifier(['$\\\\boxed{2}$'], ['$2$'])[0].success)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("verdict True") == 1  # printed once: the script did not run again in a worker


def test_workers_that_do_not_start_in_time_are_explained() -> None:
    verifier = make_verifier("math_equivalence", {"startup_seconds": 0.001, "workers": 1})
    with pytest.raises(RLSFTError, match="worker processes did not start within 0.001 s"):
        verifier(["$1$"], ["$1$"])


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
        (
            "exact_numeric",
            {"bonus": 1},
            r"verifier.options.bonus is not an option; the options are \['format_reward'\]",
        ),
        ("exact_numeric", {"format_reward": "high"}, "verifier.options.format_reward='high' should be a number"),
        ("math_equivalence", {"deadline_seconds": 0}, "deadline_seconds and startup_seconds must be positive"),
        ("math_equivalence", {"max_completion_chars": 0}, "max_completion_chars at least 1"),
    ],
)
def test_bad_verifier_config_is_explained(name: str, options: dict, message: str) -> None:
    with pytest.raises(RLSFTError, match=message):
        make_verifier(name, options)


def test_a_user_function_returning_no_number_is_explained() -> None:
    verifier = make_verifier("user_callable", {"function": "os.path:join"})
    with pytest.raises(RLSFTError, match="returned '7/7'; make it return a bool, a number or a Verdict"):
        verifier(["7"], ["7"])


NUMBER_PIECES = ["1", "23", "456", "0", ",", ".", "-", "/", " ", "\u2003", "\n", "\\frac{", "\\dfrac{", "\\tfrac", "{",
                 "}", "}{", "\\frac{12}{5}", "-\\frac{1}{2}", "3 / 4", "1,000", "fr", "ac", "d", "t", "x", "$", "%",
                 "a"]  # fmt: skip


@settings(max_examples=2000, deadline=None, database=None)
@given(st.lists(st.sampled_from(NUMBER_PIECES), max_size=40).map("".join))
def test_the_last_match_read_around_the_last_digit_is_a_whole_scans_last_match(text: str) -> None:
    # exact_numeric scans only the stretch of number characters around the last digit (a megabyte string is
    # not scanned whole): it must find what a scan of the whole text finds last.
    whole = NUMBER.findall(text)
    assert last_match(text) == (whole[-1] if whole else None)


@settings(max_examples=2000, deadline=None, database=None)
@given(st.lists(st.sampled_from(NUMBER_PIECES), max_size=40).map("".join))
def test_the_first_match_read_from_the_first_digit_is_a_whole_scans_first_match(text: str) -> None:
    # the number after a `####` marker: a megabyte of prose before it is skipped, not scanned by the regex
    whole = NUMBER.search(text)
    assert first_match(text) == (whole.groups("") if whole else None)
