"""benchmarks/online_returns.py's `--keep`: a run's small files, from which the table is made again."""

from __future__ import annotations

import csv
import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPOSITORY = Path(__file__).parents[1]
SCRIPT = REPOSITORY / "benchmarks" / "online_returns.py"


def online_returns(*argv: object) -> str:
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY)}
    command = [sys.executable, SCRIPT, "--algorithm", "sac", "--envs", "hopper", "--seeds", "0", *map(str, argv)]
    done = subprocess.run(command, env=environment, cwd=REPOSITORY, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def table(report: str) -> list[str]:
    return [line for line in report.splitlines() if line.startswith("| hopper")]


def test_a_kept_run_makes_the_runs_table_again_from_its_thinned_gzipped_rows(tmp_path) -> None:
    runs, kept, again = tmp_path / "runs", tmp_path / "kept", tmp_path / "again"
    small = [
        "algorithm.replay.learning_starts=100",
        "algorithm.replay.batch_size=32",
        "learner.compile=false",
        "policy.hidden_sizes=[32,32]",
        "algorithm.options.critic_hidden_sizes=[32,32]",
        "evaluation.episodes=2",
    ]
    report = online_returns("--runs-root", runs, "--train", "--frames", 1100, "--out", tmp_path / "a.md",
                            "--keep", kept, "--set", *small, "log_every=5")  # fmt: skip
    rows = list(csv.DictReader((runs / "hopper-seed0" / "train.csv").open()))
    with gzip.open(kept / "hopper-seed0" / "train.csv.gz", "rt") as file:
        thinned = list(csv.DictReader(file))
    assert thinned == kept_rows(rows)
    assert 0 < sum(bool(row["episode_return"]) for row in thinned) < len(thinned) < len(rows)
    assert {path.name for path in (kept / "hopper-seed0").iterdir()} == {
        "config.yaml", "eval.csv", "summary.json", "learning_curve.png", "train.csv.gz"}  # fmt: skip
    assert table(online_returns("--runs-root", kept, "--out", tmp_path / "b.md", "--keep", again)) == table(report)
    assert table(report)[0].startswith("| hopper | 1 |")
    # kept again from the kept files: the same rows, the same bytes
    packed = [folder / "hopper-seed0" / "train.csv.gz" for folder in (kept, again)]
    assert packed[0].read_bytes() == packed[1].read_bytes()


def test_an_unfinished_runs_evaluations_are_kept_and_the_table_does_not_count_it(tmp_path) -> None:
    """What a run had reached outlives the machine that ran it: killed mid-way (as a machine taken away leaves
    it), its small files are kept; the table, which reports finished runs, counts no seed."""
    runs, kept = tmp_path / "runs", tmp_path / "kept"
    run_dir = runs / "hopper-seed0"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY)}
    command = [sys.executable, "-m", "rlsft.cli", "train", "algorithm=sac", "env=hopper", f"run_dir={run_dir}",
               "algorithm.replay.frames=1000000", "algorithm.replay.learning_starts=100",
               "algorithm.replay.batch_size=32", "algorithm.evaluation_every=100", "evaluation.episodes=1",
               "learner.compile=false", "progress=false", "policy.hidden_sizes=[32,32]",
               "algorithm.options.critic_hidden_sizes=[32,32]"]  # fmt: skip
    with (tmp_path / "stderr.txt").open("w") as stderr:  # a file, not a pipe that a long run could fill
        run = subprocess.Popen(command, env=environment, cwd=REPOSITORY, stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 300
    while evaluations(run_dir) < 2 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.kill()
    assert run.wait() == -signal.SIGKILL, (tmp_path / "stderr.txt").read_text()[-3000:]
    reached = (run_dir / "eval.csv").read_text()
    assert table(online_returns("--runs-root", runs, "--out", tmp_path / "a.md", "--keep", kept)) == [
        "| hopper | 0 | n/a | n/a | 2310 ± 343 |"
    ]
    assert {path.name for path in (kept / "hopper-seed0").iterdir()} == {"config.yaml", "eval.csv", "train.csv.gz"}
    assert (kept / "hopper-seed0" / "eval.csv").read_text() == reached
    with gzip.open(kept / "hopper-seed0" / "train.csv.gz", "rt") as file:
        assert list(csv.DictReader(file)) == kept_rows(list(csv.DictReader((run_dir / "train.csv").open())))


def evaluations(run_dir: Path) -> int:
    path = run_dir / "eval.csv"
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


def kept_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The train.csv rows --keep keeps: those with an episode return, and one every 1000 steps."""
    return [row for row in rows if row["episode_return"] or int(row["step"]) % 1000 == 0]
