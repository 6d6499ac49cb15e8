"""Verifier latency: math_equivalence's per-sample time on genuine answers and on hostile strings.

A GRPO batch waits for its slowest completion, so what matters is the tail. Two sets of samples:

  golden   genuine GSM8K/MATH-style pairs (a worked solution ending in the answer, against the
           dataset's gold as a MATH solution, a bare MATH answer or a GSM8K "#### n"), right and
           wrong, short and long; timed with a 30 s deadline so that none is cut off. The default
           deadline is chosen from their slowest: it must not cut off any genuine answer.
  hostile  seeded generated strings, each once as a completion (against a plain gold) and once as
           a gold (against a plain completion): power towers, factorial chains, nested braces,
           huge numbers, big polynomials, unicode, megabyte strings, random LaTeX fragments.

The hostile samples run twice: `before` is the old setting (a 10 s deadline, whole completions),
`after` the shipped defaults (MathEquivalence()). A sample's latency is its time on a worker, from
receiving it to answering it or being killed at the deadline (DeadlineWorkers.seconds); each set
runs as one batch over 2 workers, as in training. A hostile completion judged right is listed, to
be read by eye (a false positive unless the string really equals its gold).

Reproduce (from the repository root, venv active; about 10 minutes on 2 loaded CPU cores):

    python benchmarks/verifier_latency.py

The results go to --out (benchmarks/results/verifier_latency.md) and to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import statistics
import time
from importlib.metadata import version
from pathlib import Path

from rlsft.envs.verifiers import make_verifier

# (gold as in a MATH solution's \boxed{}, an equivalent answer a model writes, a wrong one)
MATH_ANSWERS = [
    (r"\frac{\sqrt{3}}{2}", r"\frac{\sqrt3}{2}", r"\frac{\sqrt{2}}{2}"),
    (r"\frac{1}{2}", "0.5", r"\frac{1}{3}"),
    (r"2\sqrt{3}", r"\sqrt{12}", r"3\sqrt{2}"),
    ("x^2+2x+1", "(x+1)^2", "(x-1)^2"),
    (r"4\pi", r"4 \pi", r"2\pi"),
    (r"(-\infty, 3)", r"(-\infty,3)", r"(-\infty, 3]"),
    ("[1, 5]", "[1,5]", "(1,5)"),
    (r"\{1, 2, 3\}", r"\{3, 2, 1\}", r"\{1, 2\}"),
    ("x = 5", "5", "x = 6"),
    (
        r"\begin{pmatrix} 1 \\ -2 \end{pmatrix}",
        r"\begin{pmatrix}1\\-2\end{pmatrix}",
        r"\begin{pmatrix} 2 \\ -1 \end{pmatrix}",
    ),
    (r"\text{(C)}", r"\text{(C)}", r"\text{(D)}"),
    (r"30^\circ", "30", "60"),
    (r"10\%", r"10\%", r"20\%"),
    (r"\$18.90", "18.90", "18.09"),
    ("3 - 2i", "3-2i", "3+2i"),
    (r"\dfrac{5}{12}", r"\frac{5}{12}", r"\frac{7}{12}"),
    ("1.25", r"\frac{5}{4}", r"\frac{4}{5}"),
    (r"-\frac{7}{3}", "-7/3", "7/3"),
    (r"\sqrt{2}+1", r"1+\sqrt{2}", r"\sqrt{2}-1"),
    (r"\sqrt{3+2\sqrt{2}}", r"1+\sqrt{2}", r"2+\sqrt{2}"),
    ("y = 2x + 3", "y=2x+3", "y = 3x + 2"),
    ("2^{10}", "1024", "1023"),
    (r"\binom{10}{3}", "120", "720"),
    ("e^{2}", "e^2", "2e"),
    (r"\log_2 5", r"\log_{2}5", r"\log_5 2"),
    (r"\frac{3\sqrt{5}}{5}", r"\frac{3}{\sqrt{5}}", r"\frac{5}{\sqrt{3}}"),
    ("5!", "120", "24"),
    (r"\text{Monday}", r"\text{Monday}", r"\text{Tuesday}"),
    ("(2, -1)", "(2,-1)", "(-1, 2)"),
    ("x^3 - 3x + 1", "x^3-3x+1", "x^3-3x-1"),
    (r"\frac{\pi}{4}", r"\frac{\pi}{4}", r"\frac{\pi}{3}"),
    ("1000000", "10^6", "10^5"),
    ("-2, 3", "3, -2", "2, -3"),
    (r"\infty", r"\infty", r"-\infty"),
    ("a^2 - b^2", "(a-b)(a+b)", "(a-b)^2"),
    (r"\frac{a+b}{2}", r"\frac{b+a}{2}", r"\frac{a-b}{2}"),
    ("2017", "2017", "2016"),
    (r"\frac{9\pi}{2}", r"4.5\pi", r"\frac{9\pi}{4}"),
    (r"6\sqrt{6}", r"\sqrt{216}", r"6\sqrt{5}"),
    (r"\frac{1}{6}", r"0.1\overline{6}", r"\frac{1}{5}"),
]
GSM8K_ANSWERS = [18, 3, 70000, 540, 20, 64, 260, 160, 45, 460, 366, 694, 13, 18, 60, 125, 230, 57500, 7, 6]
STEPS = [
    r"Let $x$ be the unknown quantity. Then $3x + 7 = 22$, so $3x = 15$ and $x = 5$.",
    r"The area of the triangle is $\frac{1}{2} b h = \frac{1}{2} \cdot 4 \cdot 6 = 12$.",
    r"By the Pythagorean theorem, $a^2 + b^2 = c^2$, so $c = \sqrt{9 + 16} = 5$.",
    r"Expanding, $(x+2)(x-3) = x^2 - x - 6$, and the roots are $x = -2$ and $x = 3$.",
    r"Since $\sin^2\theta + \cos^2\theta = 1$, we get $\cos\theta = \pm\frac{\sqrt{3}}{2}$.",
    r"There are $\binom{5}{2} = 10$ ways to choose the pair, out of $2^5 = 32$ outcomes.",
    r"Summing the series, $\sum_{k=1}^{n} k = \frac{n(n+1)}{2}$, which for $n = 10$ is $55$.",
    "She earns 12 * 5 = 60 dollars a week, and spends 60 / 4 = 15 of them on lunch.",
    r"Dividing both sides by $2$ gives $y = \frac{7}{2}$, and substituting back, $x = 1$.",
    r"The slope is $m = \frac{6 - 2}{3 - 1} = 2$, so the line is $y - 2 = 2(x - 1)$.",
]


def worked(rng: random.Random, steps: int, ending: str) -> str:
    """A model-like worked solution: `steps` reasoning sentences, then the final answer."""
    return " ".join(rng.choice(STEPS) for _ in range(steps)) + "\n" + ending


def golden_pairs(rng: random.Random) -> list[tuple[str, str, str, bool]]:
    """(kind, completion, gold, right) for genuine answers: MATH golds as solutions and bare, GSM8K golds."""
    pairs = []
    for gold, right, wrong in MATH_ANSWERS:
        for answer, is_right in ((right, True), (wrong, False)):
            for steps in (3, 12, 60):  # about 250, 1000 and 5000 characters
                ending = rng.choice(
                    [f"Therefore, the answer is $\\boxed{{{answer}}}$.", f"So the answer is $\\boxed{{{answer}}}$."]
                )
                completion = worked(rng, steps, ending)
                solution = worked(rng, 4, f"The answer is $\\boxed{{{gold}}}$.")
                pairs += [
                    ("MATH solution", completion, solution, is_right),
                    ("MATH answer", completion, gold, is_right),
                ]
    for number in GSM8K_ANSWERS:
        gold = worked(rng, 3, f"#### {number}")
        for answer, is_right in ((number, True), (number + 1, False)):
            for steps in (3, 12):
                ending = rng.choice(
                    [f"#### {answer:,}", f"The answer is {answer}.", f"The answer is $\\boxed{{{answer}}}$."]
                )
                pairs.append(("GSM8K", worked(rng, steps, ending), gold, is_right))
    return pairs


FRAGMENTS = [
    r"\frac{",
    r"\sqrt{",
    "^{",
    "_{",
    "{",
    "}",
    r"\int",
    r"\sum_{n=1}^{\infty}",
    r"\lim_{x\to0}",
    "!",
    "=",
    r"\begin{pmatrix}",
    "&",
    r"\\",
    r"\end{pmatrix}",
    r"\left(",
    r"\right)",
    "(",
    ")",
    "[",
    "]",
    "$",
    r"\boxed{",
    "x",
    "y",
    "9",
    "99",
    "0.",
    "-",
    "+",
    r"\cdot",
    r"\infty",
    r"\pi",
    "e",
    "i",
    ",",
    r"\{",
    r"\}",
    r"\le",
    "%",
]


def hostile_strings(rng: random.Random, count: int) -> list[tuple[str, str]]:
    """(category, string) pairs, `count` in all, in 9 seeded categories."""

    def tower() -> str:
        text = str(rng.randint(2, 99))
        for _ in range(rng.randint(2, 7)):
            text = f"{rng.randint(2, 99)}^{{{text}}}"
        return f"\\boxed{{{text}}}"

    makers = {
        "power tower": tower,
        "factorial chain": lambda: f"\\boxed{{{rng.randint(3, 500)}{'!' * rng.randint(1, 8)}}}",
        "nested braces": lambda: (lambda d: "\\boxed{" + "{" * d + "1" + "}" * rng.choice([d, d - 1, 0]) + "}")(
            rng.randint(10, 3000)
        ),
        "huge number": lambda: rng.choice(
            [
                f"\\boxed{{{'9' * rng.randint(1000, 200000)}}}",
                f"\\boxed{{10^{{10^{{{rng.randint(3, 99)}}}}}}}",
                f"$\\boxed{{{rng.randint(2, 9)}^{{{rng.randint(10**5, 10**9)}}}}}$",
            ]
        ),
        "big polynomial": lambda: rng.choice(
            [
                f"\\boxed{{(x+1)^{{{rng.randint(100, 20000)}}}}}",
                "$\\boxed{" + "+".join(f"x^{{{k}}}" for k in range(rng.randint(200, 3000))) + "}$",
                f"\\boxed{{\\prod_{{k=1}}^{{{rng.randint(10**3, 10**9)}}} (x-k)}}",
            ]
        ),
        "unicode": lambda: "".join(
            chr(
                rng.choice(
                    [
                        rng.randint(0x20, 0x7E),
                        rng.randint(0x80, 0x2FFF),
                        rng.randint(0x1F300, 0x1FAFF),
                        0x0301,
                        0x202E,
                        0,
                    ]
                )
            )
            for _ in range(rng.randint(1, 400))
        ),
        "megabyte": lambda: rng.choice(
            [
                "a" * 2**20,
                "\\boxed{1}" * 100_000,
                "$" * 2**20,
                "".join(rng.choices("0123456789", k=2**20)),
                "\\frac{" * 100_000,
                "{" * 2**19 + "}" * 2**19,
                "1+" * 2**19 + "1",
            ]
        ),
        "latex fragments": lambda: "".join(rng.choices(FRAGMENTS, k=rng.randint(1, 300))),
        "set or matrix": lambda: rng.choice(
            [
                "\\boxed{\\{" + ",".join(str(k) for k in range(rng.randint(100, 5000))) + "\\}}",
                "\\boxed{\\begin{pmatrix}"
                + "\\\\".join("&".join("x" for _ in range(30)) for _ in range(30))
                + "\\end{pmatrix}}",
                f"\\boxed{{\\int_0^{{{rng.randint(2, 9)}^{{{rng.randint(2, 9)}^{{99}}}}}} e^{{x^2}} dx}}",
            ]
        ),
    }
    names = list(makers)
    return [(names[i % len(names)], makers[names[i % len(names)]]()) for i in range(count)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(options: dict, completions: list[str], golds: list[str]) -> tuple[list, list[float], float, int]:
    """Verdicts, per-sample worker seconds, the batch's wall seconds and its deadline misses, on 2 workers."""
    verifier = make_verifier("math_equivalence", {"workers": 2, **options})
    verifier.gold_problem("1")  # workers started before the clock
    start = time.perf_counter()
    verdicts = verifier(completions, golds)
    wall = time.perf_counter() - start
    seconds, misses = list(verifier.pool.seconds), verifier.deadline_misses
    verifier.close()
    return verdicts, seconds, wall, misses


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return models[0] if models else platform.processor() or "CPU"


def stats_row(name: str, seconds: list[float], wall: float, misses: int, extra: str = "") -> str:
    return (
        f"| {name} | {len(seconds)} | {statistics.median(seconds):.3f} | {percentile(seconds, 0.99):.3f} |"
        f" {max(seconds):.3f} | {sum(s > 1.0 for s in seconds)} | {misses} | {wall:.1f} |{extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hostile", type=int, default=150, help="hostile strings (each runs twice: completion, gold)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/verifier_latency.md")
    args = parser.parse_args()
    load_start = os.getloadavg()[0]
    rng = random.Random(args.seed)

    golden = golden_pairs(rng)
    verdicts, golden_seconds, golden_wall, golden_misses = timed(
        {"deadline_seconds": 30.0}, [p[1] for p in golden], [p[2] for p in golden]
    )
    wrongly = [p for p, v in zip(golden, verdicts) if v.success != p[3]]
    by_kind = {
        kind: [s for p, s in zip(golden, golden_seconds) if p[0] == kind]
        for kind in dict.fromkeys(p[0] for p in golden)
    }
    print(
        f"golden: {len(golden)} pairs, max {max(golden_seconds):.3f} s, {len(wrongly)} judged against expectation",
        flush=True,
    )

    strings = hostile_strings(rng, args.hostile)
    plain_golds = ["1", "$\\frac{1}{2}$", "x^2+1", "#### 72"]
    completions = [s for _, s in strings] + ["The answer is $\\boxed{1}$."] * len(strings)
    golds = [plain_golds[i % len(plain_golds)] for i in range(len(strings))] + [s for _, s in strings]
    categories = [c for c, _ in strings] * 2
    roles = ["completion"] * len(strings) + ["gold"] * len(strings)
    rows, positives, walls, per_category = [], {}, {}, {}
    for name, options in (("before", {"deadline_seconds": 10.0, "max_completion_chars": 10**9}), ("after", {})):
        verdicts, seconds, walls[name], misses = timed(options, completions, golds)
        rows.append(stats_row(name, seconds, walls[name], misses))
        print(rows[-1], flush=True)
        positives[name] = [
            (categories[i], completions[i], golds[i])
            for i, v in enumerate(verdicts)
            if v.success and roles[i] == "completion"
        ]
        per_category[name] = {
            c: [s for s, cc in zip(seconds, categories) if cc == c] for c in dict.fromkeys(categories)
        }
    before, after = per_category["before"], per_category["after"]

    exact = make_verifier("exact_numeric", {})
    exact_seconds = []
    for completion, gold in zip(completions, golds):
        start = time.perf_counter()
        exact([completion], [gold])
        exact_seconds.append(time.perf_counter() - start)

    versions = ", ".join(f"{p} {version(p)}" for p in ("math-verify", "sympy", "latex2sympy2_extended"))
    lines = [
        "# Verifier latency: math_equivalence on genuine answers and hostile strings",
        "",
        "- command: `python benchmarks/verifier_latency.py`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- machine: {cpu_name()}, {os.cpu_count()} cores, CPU only; Python {platform.python_version()}, {versions}",
        f"- load average (1 min) at start / end: {load_start:.2f} / {os.getloadavg()[0]:.2f} (other processes share the machine)",
        "- each set runs as one batch on 2 workers; a sample's latency is its time on a worker (to its answer, or to",
        "  being killed at the deadline); wall is the whole batch, what a training step would wait",
        "",
        f"## Golden table: {len(golden)} genuine pairs, deadline 30 s (none cut off: {golden_misses} misses)",
        "",
        "| kind | pairs | p50 s | p99 s | max s |",
        "|---|---:|---:|---:|---:|",
        *[
            f"| {k} | {len(s)} | {statistics.median(s):.3f} | {percentile(s, 0.99):.3f} | {max(s):.3f} |"
            for k, s in by_kind.items()
        ],
        f"| all | {len(golden_seconds)} | {statistics.median(golden_seconds):.3f} | {percentile(golden_seconds, 0.99):.3f} | {max(golden_seconds):.3f} |",
        "",
        f"Judged against expectation: {len(wrongly)} of {len(golden)}"
        + "".join(
            f"\n- {kind}, expected {'right' if right else 'wrong'}: gold `{gold[-60:]}`, completion `...{c[-60:]}`"
            for kind, c, gold, right in wrongly
        ),
        "",
        f"## Hostile strings: {len(strings)} strings x 2 roles = {len(completions)} samples",
        "",
        "before: deadline 10 s, whole completions (the old defaults); after: the defaults (MathEquivalence()).",
        "",
        "| variant | samples | p50 s | p99 s | max s | over 1 s | deadline misses | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"after / before, batch wall time: {walls['after'] / walls['before']:.2f}",
        "",
        "| category | samples | before p99 s | before max s | after p99 s | after max s |",
        "|---|---:|---:|---:|---:|---:|",
        *[
            f"| {c} | {len(s)} | {percentile(before[c], 0.99):.3f} | {max(before[c]):.3f} |"
            f" {percentile(s, 0.99):.3f} | {max(s):.3f} |"
            for c, s in after.items()
        ],
        "",
        f"exact_numeric on the same samples, in process: p50 {statistics.median(exact_seconds) * 1e3:.3f} ms,"
        f" p99 {percentile(exact_seconds, 0.99) * 1e3:.3f} ms, max {max(exact_seconds) * 1e3:.3f} ms",
        "",
        "## Hostile completions judged right (read by eye: a false positive unless the string equals its gold)",
        "",
        *[
            f"- {name}: {len(found)}"
            + "".join(f"\n  - {c}: gold `{g[:40]}`, completion `{s[:100]}`" for c, s, g in found)
            for name, found in positives.items()
        ],
        "",
    ]
    Path(args.out).write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
