"""SAC's speed on this machine, to plan its 1M-step runs: `rlsft train algorithm=sac` steps/s against PPO's.

What is measured: fresh runs of `rlsft train algorithm=sac env=<env>` at CleanRL's sizes (actor and
critics 2x256, 256 transitions a step, one env step and one update a step), eager and compiled
(`learner.compile=true`; its first rows, which hold the compilation, left out), and, as the baseline in
the same session, `rlsft train algorithm=ppo env=<env>` (CleanRL's PPO: 8 envs x 256 steps a rollout,
10 epochs of 32 minibatches), each process with one thread (OMP_NUM_THREADS=1). A run's speed is read
from its own train.csv, between its first and last logged rows (training clock, evaluations
excluded): SAC's env steps (= updates) per second after the random warm-up, PPO's env frames per
second over its whole training clock. From those: the hours 1M env steps take each, and the ratio.
--rounds rounds, each running every env's SAC and PPO in turn; a speed is the median over rounds,
with its range.

Reproduce (from the repository root, venv active):

    python benchmarks/sac_throughput.py                  # about 9 minutes on 2 cores

The machine should be otherwise idle; the table goes to --out and stdout.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPOSITORY = Path(__file__).resolve().parents[1]
ENVS = ("hopper", "halfcheetah", "walker2d")
# SAC: 500 random steps, then `steps` updates; PPO: two rollouts of 2048 frames (640 gradient steps)
SAC = ["algorithm=sac", "algorithm.replay.learning_starts=500"]
ALGORITHMS = {
    "sac": lambda steps: [*SAC, f"learner.steps={steps}"],
    "sac_compiled": lambda steps: [*SAC, f"learner.steps={steps}", "learner.compile=true"],
    "ppo": lambda steps: ["algorithm=ppo", "algorithm.rollout.frames=4096"],
}
SKIPPED_ROWS = {"sac": 1, "sac_compiled": 5}  # the compiled run's first rows hold its compilation


def speed(algorithm: str, env: str, steps: int, folder: Path) -> float:
    """One fresh run's env steps per second of training clock, from its train.csv."""
    run_dir = folder / f"{algorithm}-{env}"
    settings = [*ALGORITHMS[algorithm](steps), f"env={env}", f"run_dir={run_dir}", "evaluation.every=0",
                "evaluation.episodes=1", "log_every=20", "progress=false", "budget=cpu"]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "rlsft.cli", "train", *settings], check=True, env=environment,
                   stdout=subprocess.DEVNULL, cwd=REPOSITORY)  # fmt: skip
    with (run_dir / "train.csv").open() as file:
        rows = list(csv.DictReader(file))
    first, last = rows[SKIPPED_ROWS.get(algorithm, 0)], rows[-1]
    if algorithm == "ppo":  # every frame over the whole training clock: its collections and its updates
        return float(last["frames"]) / float(last["seconds"])
    return (float(last["step"]) - float(first["step"])) / (float(last["seconds"]) - float(first["seconds"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=600, help="SAC's updates a run")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "benchmarks/results/sac_throughput.md")
    args = parser.parse_args()
    speeds = {(a, e): [] for a in ALGORITHMS for e in ENVS}
    for round_index in range(args.rounds):
        for env in ENVS:
            for algorithm in ALGORITHMS:
                with tempfile.TemporaryDirectory() as folder:
                    speeds[algorithm, env].append(speed(algorithm, env, args.steps, Path(folder)))
                print(f"round {round_index}: {algorithm} {env} {speeds[algorithm, env][-1]:.1f}/s", file=sys.stderr)
    lines = [
        "# SAC's speed, against PPO's, to plan 1M-step runs",
        "",
        "- command: `python benchmarks/sac_throughput.py"
        + (f" --rounds {args.rounds}" if args.rounds != 3 else "")
        + "`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, CPU only; torch {torch.__version__};"
        " one thread a run",
        f"- {args.rounds} interleaved rounds; medians over rounds (range)",
        "",
        "| env | SAC env steps/s (one update each) | compiled (learner.compile=true) | compiled / eager |"
        " PPO env frames/s | PPO / compiled SAC | hours for 1M steps: SAC compiled | PPO |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for env in ENVS:
        sac, compiled, ppo = (statistics.median(speeds[a, env]) for a in ALGORITHMS)
        spread = {a: f"({min(speeds[a, env]):.1f}-{max(speeds[a, env]):.1f})" for a in ("sac", "sac_compiled")}
        lines.append(
            f"| {env} | {sac:.1f} {spread['sac']} | {compiled:.1f} {spread['sac_compiled']} | {compiled / sac:.2f}x |"
            f" {ppo:.0f} | {ppo / compiled:.1f}x | {1e6 / compiled / 3600:.1f} | {1e6 / ppo / 3600:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
