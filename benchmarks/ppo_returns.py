"""PPO returns at 1M environment steps on Hopper, Walker2d and HalfCheetah v5, beside CleanRL's.

Each (env, seed) is one `rlsft train algorithm=ppo env=<env> seed=<seed>` run under
`--runs-root/<env>-seed<seed>`; runs that already finished are read, missing ones are
trained here (about an hour each on one CPU core: pass `--train`). The table reports the
final deterministic evaluation (`evaluation.episodes` episodes of the mean action) and the
mean return of the last training episodes (stochastic actions, as CleanRL reports), with
mean +- std over seeds.

    python benchmarks/ppo_returns.py --runs-root runs/ppo --seeds 0 1 2 --train
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import statistics
from pathlib import Path

from rlsft.cli import main as rlsft

# CleanRL ppo_continuous_action at 1M steps on MuJoCo v4 (method.md §5); ours run v5.
REFERENCE = {"hopper": 2050, "walker2d": 2890, "halfcheetah": 2900}


def last_training_return(run_dir: Path, last: int = 10) -> float | None:
    """Mean of the last `last` logged episode returns (each a mean over recent episodes)."""
    rows = [row for row in csv.DictReader((run_dir / "train.csv").open()) if row.get("episode_return")]
    values = [float(row["episode_return"]) for row in rows[-last:]]
    return statistics.fmean(values) if values else None


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.0f} ± {std:.0f} (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-root", type=Path, default=Path("runs/ppo"))
    parser.add_argument("--envs", nargs="+", default=list(REFERENCE))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--train", action="store_true", help="train the runs that are missing")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ppo_returns.md"))
    args = parser.parse_args()

    lines = [
        "# PPO returns at 1M environment steps",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}; runs under `{args.runs_root}`",
        f"- command: `python benchmarks/ppo_returns.py --runs-root {args.runs_root} --seeds "
        f"{' '.join(map(str, args.seeds))}{' --train' if args.train else ''}`",
        "- evaluation: deterministic mean action; training return: last logged episodes, sampled actions",
        "",
        "| env | seeds found | final evaluation return | last training return | CleanRL (v4, 1M) |",
        "|---|---|---|---|---:|",
    ]
    for env in args.envs:
        evaluations, training = [], []
        for seed in args.seeds:
            run_dir = args.runs_root / f"{env}-seed{seed}"
            if not (run_dir / "summary.json").exists() and args.train:
                rlsft(["train", "algorithm=ppo", f"env={env}", f"seed={seed}", f"run_dir={run_dir}", "progress=false"])
            if (run_dir / "summary.json").exists():
                evaluations.append(json.loads((run_dir / "summary.json").read_text())["return_mean"])
                if (value := last_training_return(run_dir)) is not None:
                    training.append(value)
        lines.append(f"| {env} | {len(evaluations)} | {spread(evaluations)} | {spread(training)} | {REFERENCE[env]} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
