"""Every shipped verifier against generated hostile strings, as completions and as gold answers.

No verifier may raise on them, and none may take longer than its deadline: math_equivalence's
per-sample deadline (each sample's time on a worker), 0.5 s a sample for the in-process ones.
"""

from __future__ import annotations

import math
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlsft.envs.verifiers import Verifier, make_verifier

FRAGMENTS = [r"\frac{", r"\sqrt{", "^{", "_{", "{", "}", r"\int", r"\sum_{n=1}^{\infty}", r"\lim_{x\to0}", "!", "=",
             r"\begin{pmatrix}", "&", r"\\", r"\end{pmatrix}", r"\left(", r"\right)", "(", ")", "[", "]", "$",
             r"\boxed{", "x", "9", "0.", "-", "+", r"\cdot", r"\infty", r"\pi", ",", "/", "####", "%", " "]  # fmt: skip
MEGABYTE = 2**20
MEGABYTE_STRINGS = ["a" * MEGABYTE, "\\boxed{1}" * (MEGABYTE // 9), "$" * MEGABYTE, "9" * MEGABYTE,
                    "\\frac{" * (MEGABYTE // 6), "{" * MEGABYTE, "1+" * (MEGABYTE // 2), "#### 1/" * (MEGABYTE // 7)]  # fmt: skip
digits = st.integers(2, 99).map(str)
towers = st.lists(digits, min_size=3, max_size=8).map(lambda parts: "^{".join(parts) + "}" * (len(parts) - 1))
factorials = st.tuples(st.integers(3, 500), st.integers(1, 8)).map(lambda nk: f"{nk[0]}{'!' * nk[1]}")
braces = st.tuples(st.integers(1, 3000), st.integers(0, 3000)).map(lambda d: "{" * d[0] + "1" + "}" * d[1])
huge = st.one_of(
    st.integers(10**50, 10**400).map(str),
    st.integers(2, 10**9).map(lambda n: f"10^{{10^{{{n}}}}}"),
    st.integers(100, 5000).map(lambda n: f"(x+1)^{{{n}}}"),
)
fragments = st.lists(st.sampled_from(FRAGMENTS), max_size=200).map("".join)
hostile = st.one_of(
    towers,
    factorials,
    braces,
    huge,
    fragments,
    st.text(max_size=300),  # any unicode, surrogates, NUL, combining marks
    st.sampled_from(MEGABYTE_STRINGS),
).flatmap(lambda s: st.sampled_from([s, f"\\boxed{{{s}}}", f"$\\boxed{{{s}}}$", f"#### {s}", f"So it is {s}."]))

OPTIONS = {
    "exact_numeric": {},
    "answer_format": {},
    "user_callable": {"function": "operator:eq"},
    "math_equivalence": {"deadline_seconds": 0.5, "workers": 2},
}
BATCH = {"exact_numeric": 40, "answer_format": 40, "user_callable": 40, "math_equivalence": 8}
EXAMPLES = {"exact_numeric": 20, "answer_format": 20, "user_callable": 20, "math_equivalence": 5}
# Per sample: a hang guard, 1.5x the slowest measured (exact_numeric on a megabyte string, 0.33 s, when it scanned
# the whole string; 0.08 s since it scans the last number's stretch: a megabyte of digits).
IN_PROCESS_SECONDS = 0.5
PLAIN_GOLDS = ["$1$", "#### 72", "\\frac{1}{2}", "x^2+1"]
MARGIN = 1.0  # seconds: process scheduling on a loaded 2-core machine


def test_every_shipped_verifier_is_fuzzed() -> None:
    shipped = {name for name, cls in Verifier.registry.items() if cls.__module__.startswith("rlsft.")}
    assert shipped == set(OPTIONS), "give a new verifier its options here"


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_hostile_strings_neither_raise_nor_overrun(name: str) -> None:
    verifier = make_verifier(name, OPTIONS[name])

    @settings(max_examples=EXAMPLES[name], deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.lists(hostile, min_size=BATCH[name], max_size=BATCH[name]))
    def run(strings: list[str]) -> None:
        completions = strings + ["The answer is $\\boxed{1}$.\n#### 1"] * len(strings)
        golds = [PLAIN_GOLDS[i % len(PLAIN_GOLDS)] for i in range(len(strings))] + strings
        misses = getattr(verifier, "deadline_misses", 0)
        start = time.monotonic()
        verdicts = verifier(completions, golds)
        seconds = time.monotonic() - start
        assert len(verdicts) == len(completions) and all(math.isfinite(v.reward) for v in verdicts)
        if name == "math_equivalence":
            deadline = OPTIONS[name]["deadline_seconds"]
            assert max(verifier.pool.seconds) <= deadline + MARGIN
            # Each worker serves its share of samples, each within the deadline; a killed worker's
            # replacement takes a fresh interpreter's start (under 3 s) while the other works on.
            restarts = verifier.deadline_misses - misses
            rounds = math.ceil(len(completions) / verifier.workers)
            assert seconds <= rounds * deadline + restarts * 3.0 + MARGIN
        else:
            assert seconds <= IN_PROCESS_SECONDS * len(completions) + MARGIN

    try:
        run()
    finally:
        getattr(verifier, "close", lambda: None)()
