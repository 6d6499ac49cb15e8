"""Online RL returns (PPO or SAC) at 1M environment steps on Hopper, Walker2d and HalfCheetah v5, beside CleanRL's.

Each (env, seed) is one `rlsft train algorithm=<ppo|sac> env=<env> seed=<seed>` run under
`--runs-root/<env>-seed<seed>`; runs that already finished are read, missing ones are
trained here (`--train`; on one CPU core PPO takes about half an hour, SAC about four hours:
benchmarks/results/sac_throughput.md). The table reports the final deterministic evaluation
(`evaluation.episodes` episodes of the mean action) and the mean return of the last training
episodes (sampled actions, as CleanRL reports and as rlsft's datasets record them), with
mean +- std over seeds.

    python benchmarks/online_returns.py --algorithm ppo --runs-root runs/ppo --seeds 0 1 2 --train
    python benchmarks/online_returns.py --algorithm sac --runs-root runs/sac --seeds 0 1 2 --train

`--keep <folder>` copies each run's small files (config, evaluations, summary, plot, and train.csv gzipped and
thinned) to `<folder>/<env>-seed<seed>`, a runs root this script reads as it reads the runs: what
benchmarks/results/sac_runs keeps, from which the tables are made again without the runs. Unfinished runs' are
kept too, so that their progress outlives the machine; the table counts finished runs only.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import gzip
import io
import json
import shlex
import shutil
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rlsft.cli import main as rlsft  # noqa: E402

ENVS = ("hopper", "walker2d", "halfcheetah")
# CleanRL's training episodic return at 1M steps (ours run v5): ppo_continuous_action on v4 (method.md §5);
# sac_continuous_action on v2, mean over seeds (docs/rl-algorithms/sac.md in vwxyzjn/cleanrl: Hopper
# 2310 ± 343, Walker2d 3591 ± 911, HalfCheetah 9635 ± 1424).
# Each is (mean, std over seeds or None where the source gives none).
REFERENCE = {
    "ppo": {"label": "CleanRL (v4, 1M)", "hopper": (2050, None), "walker2d": (2890, None), "halfcheetah": (2900, None)},
    "sac": {"label": "CleanRL (v2, 1M)", "hopper": (2310, 343), "walker2d": (3591, 911), "halfcheetah": (9635, 1424)},
}
# The key that sets a run's environment steps.
FRAMES_KEY = {"ppo": "algorithm.rollout.frames", "sac": "algorithm.replay.frames"}


# --keep: the train.csv rows kept beside those with an episode return: one every KEPT_EVERY steps (SAC logs every 10)
KEPT_EVERY = 1000
SMALL_FILES = ("config.yaml", "eval.csv", "summary.json", "learning_curve.png")


def train_rows(run_dir: Path) -> list[dict[str, str]]:
    """A run's train.csv rows, from train.csv or from the train.csv.gz that --keep writes."""
    path = run_dir / "train.csv"
    with path.open() if path.exists() else gzip.open(run_dir / "train.csv.gz", "rt") as file:
        return list(csv.DictReader(file))


def keep(run_dir: Path, folder: Path) -> None:
    """A run's small files in `folder`; train.csv gzipped (with no timestamp: the same rows, the same bytes),
    thinned to the rows this script reads (an episode return) and one every KEPT_EVERY steps (the losses).
    An unfinished run's are kept too (no summary.json, so the table passes them by): what it had reached
    survives the machine that runs it; kept again when it has finished, its files are the finished run's."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in SMALL_FILES:
        if (run_dir / name).exists():
            shutil.copy2(run_dir / name, folder / name)
    logged = any((run_dir / name).exists() for name in ("train.csv", "train.csv.gz"))
    rows = train_rows(run_dir) if logged else []
    if not rows:  # a run stopped before its first training log
        return
    kept = [row for row in rows if row.get("episode_return") or int(row["step"]) % KEPT_EVERY == 0]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(kept)
    (folder / "train.csv.gz").write_bytes(gzip.compress(text.getvalue().encode(), mtime=0))


def last_training_return(run_dir: Path, last: int = 10) -> float | None:
    """Mean of the last `last` logged episode returns (each a mean over recent episodes)."""
    rows = [row for row in train_rows(run_dir) if row.get("episode_return")]
    values = [float(row["episode_return"]) for row in rows[-last:]]
    return statistics.fmean(values) if values else None


def evaluation_curve(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(environment frames, deterministic evaluation return) at each evaluation of a run;
    frames are read off the training log, which records them against gradient steps."""
    train = [row for row in train_rows(run_dir) if row.get("frames")]
    steps, frames = (np.array([float(row[key]) for row in train]) for key in ("step", "frames"))
    evaluation = list(csv.DictReader((run_dir / "eval.csv").open()))
    eval_steps = np.array([float(row["step"]) for row in evaluation])
    return np.interp(eval_steps, steps, frames), np.array([float(row["return_mean"]) for row in evaluation])


def plot_curves(runs: dict[str, list[Path]], algorithm: str, path: Path) -> None:
    """Evaluation return against frames per env: mean over seeds, shaded +- std, CleanRL's final mean dotted."""
    figure, axes = plt.subplots(1, len(runs), figsize=(4.2 * len(runs), 3.4), constrained_layout=True, squeeze=False)
    for axis, (env, run_dirs) in zip(axes[0], runs.items(), strict=True):
        curves = [evaluation_curve(run_dir) for run_dir in run_dirs]
        if curves:  # on the coarsest run's evaluation frames (runs may evaluate at different intervals)
            frames = min((run_frames for run_frames, _ in curves), key=len)
            returns = np.stack([np.interp(frames, run_frames, run_returns) for run_frames, run_returns in curves])
            mean, std = returns.mean(0), returns.std(0)
            axis.plot(frames, mean, label=f"rlsft {algorithm.upper()} ({len(curves)} seeds)")
            axis.fill_between(frames, mean - std, mean + std, alpha=0.25)
        axis.axhline(REFERENCE[algorithm][env][0], linestyle=":", color="gray", label=REFERENCE[algorithm]["label"])
        axis.set(title=env, xlabel="environment frames", ylabel="evaluation return")
    axes[0][0].legend(loc="lower right")
    figure.savefig(path, dpi=120)


def spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.0f} ± {std:.0f} (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithm", choices=sorted(REFERENCE), default="ppo")
    parser.add_argument("--runs-root", type=Path, help="default: runs/<algorithm>")
    parser.add_argument("--envs", nargs="+", choices=ENVS, default=list(ENVS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--frames", type=int, default=1_000_000, help="environment steps of each run trained here")
    parser.add_argument("--train", action="store_true", help="train the runs that are missing")
    more = "more `rlsft train` overrides for the runs trained here, e.g. evaluation.snapshots=true"
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help=more)
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/<algorithm>_returns.md")
    parser.add_argument(
        "--keep", type=Path, help="copy each run's small files to KEEP/<env>-seed<seed>, finished or not"
    )
    args = parser.parse_args()
    algorithm, reference = args.algorithm, REFERENCE[args.algorithm]
    runs_root = args.runs_root or Path("runs") / algorithm
    if args.keep and args.keep.resolve() == runs_root.resolve():
        parser.error(f"--keep {args.keep} is the runs root itself; name another folder for the small files.")
    out = args.out or Path(f"benchmarks/results/{algorithm}_returns.md")

    lines = [
        f"# {algorithm.upper()} returns at {args.frames:,} environment steps",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}; runs under `{runs_root}`",
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        "- evaluation: deterministic mean action; training return: last logged episodes, sampled actions, which"
        f" is what {reference['label']} reports (its episodic return; mean ± std over its seeds where published)",
        "",
        f"| env | seeds found | final evaluation return | last training return | {reference['label']} |",
        "|---|---|---|---|---:|",
    ]
    finished: dict[str, list[Path]] = {}
    for env in args.envs:
        evaluations, training = [], []
        finished[env] = []
        for seed in args.seeds:
            run_dir = runs_root / f"{env}-seed{seed}"
            if not (run_dir / "summary.json").exists() and args.train:
                frames = f"{FRAMES_KEY[algorithm]}={args.frames}"
                status = rlsft(
                    [
                        "train",
                        f"algorithm={algorithm}",
                        f"env={env}",
                        f"seed={seed}",
                        frames,
                        f"run_dir={run_dir}",
                        "progress=false",
                        *args.set,
                    ]
                )
                if status:  # a mistake (its sentence is on stderr) or a stop (SIGTERM): no report of a part
                    sys.exit(status)
            if args.keep and run_dir.is_dir():
                keep(run_dir, args.keep / run_dir.name)
            if (run_dir / "summary.json").exists():
                finished[env].append(run_dir)
                evaluations.append(json.loads((run_dir / "summary.json").read_text())["return_mean"])
                if (value := last_training_return(run_dir)) is not None:
                    training.append(value)
        mean, std = reference[env]
        published = f"{mean}" if std is None else f"{mean} ± {std}"
        lines.append(f"| {env} | {len(evaluations)} | {spread(evaluations)} | {spread(training)} | {published} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    plot = out.with_suffix(".png")
    plot_curves(finished, algorithm, plot)
    lines += ["", f"![evaluation return against environment frames]({plot.name})", ""]
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
