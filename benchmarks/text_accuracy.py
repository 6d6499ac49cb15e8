"""Held-out accuracy on the arithmetic task: the start model, the SFT family and GRPO, over seeds.

Each (method, seed) is one `rlsft train env=arithmetic policy=<policy> ...` run under
`--runs-root/<policy>/<method>-seed<seed>`; finished runs are read, missing ones trained.

    base             the start model itself (greedy decoding is deterministic: one number)
    sft              algorithm=sft: the start model's verified samples, 5 epochs
    iw_sft           algorithm=iw_sft with method.md §4's LLM defaults (q = policy, alpha 1, clip [0, 16])
    iw_sft_per_step  the same with per-token weights clipped to [0.2, 1.8]
    sft_q            algorithm=sft_q (verifier scores as quality)
    grpo             algorithm=grpo: 8 prompts x 8 completions per step from the policy itself

The SFT family trains on one dataset per policy (sampled once with `sampling.seed`, shared
by every training seed); the seed changes the minibatch order, and for GRPO the sampling.
Accuracy is greedy decoding on the held-out prompts, scored by the exact-numeric verifier.
Time is training wall-clock (`seconds` in the runs' logs: evaluations and the one-off
data sampling excluded). The plot shows accuracy against that time, means over seeds.

    python benchmarks/text_accuracy.py --train                          # tiny model, seeds 0 1 2
    python benchmarks/text_accuracy.py --train --policy smollm2 --reduced   # SmolLM2 sized for a CPU

Without --train it only reports the runs it finds.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from rlsft.cli import compose_config  # noqa: E402
from rlsft.cli import main as rlsft  # noqa: E402
from rlsft.experiments.text import held_out_evaluation, text_sampler  # noqa: E402
from rlsft.policies import make_policy  # noqa: E402

METHODS = {  # method -> overrides of `rlsft train env=arithmetic`
    "sft": ["algorithm=sft", "evaluation.every=200"],
    "iw_sft": ["algorithm=iw_sft", "evaluation.every=200"],
    "iw_sft_per_step": ["algorithm=iw_sft", "algorithm.options.per_step=true", "evaluation.every=200"],
    "sft_q": ["algorithm=sft_q", "evaluation.every=200"],
    "grpo": ["algorithm=grpo", "learner.steps=600", "evaluation.every=50"],  # 3x the default: GRPO still climbs at 200
}
# A CPU-sized SmolLM2 run: fewer prompts, samples and GRPO steps; labelled "reduced" in the results.
REDUCED = {
    "common": ["env.task.options.train_size=64", "env.task.options.test_size=64", "evaluation.episodes=64",
               "evaluation.interim_episodes=64", "generation.completions_per_call=32"],
    "grpo": ["learner.steps=20", "algorithm.rollout.prompts_per_batch=4", "evaluation.every=5"],
    "other": ["evaluation.every=0"],
}  # fmt: skip


def run_method(method: str, seed: int, args: argparse.Namespace) -> Path | None:
    """The run's folder, trained first when it is missing and --train is given; else None."""
    run_dir = args.runs_root / args.policy / f"{method}-seed{seed}"
    if not (run_dir / "summary.json").exists():
        if not args.train:
            return None
        overrides = [*METHODS[method], "evaluation.interim_episodes=200"]  # every point on all held-out prompts
        if args.reduced:
            overrides += REDUCED["common"] + REDUCED["grpo" if method == "grpo" else "other"]
        overrides = list({o.split("=")[0]: o for o in overrides}.values())  # a later value of a key replaces one before
        command = ["train", "env=arithmetic", f"policy={args.policy}", f"seed={seed}", f"run_dir={run_dir}"]
        if rlsft([*command, "progress=false", *overrides, *args.overrides]) != 0:
            raise SystemExit(f"run {run_dir} failed")
    return run_dir


def base_accuracy(args: argparse.Namespace) -> float:
    """The start model's greedy held-out accuracy, on the prompts the runs are evaluated on."""
    overrides = [
        "env=arithmetic",
        f"policy={args.policy}",
        *(REDUCED["common"] if args.reduced else []),
        *args.overrides,
    ]
    cfg = compose_config("train", overrides)
    return held_out_evaluation(cfg, text_sampler(cfg, make_policy(cfg.policy)))(cfg.evaluation.episodes)["accuracy"]


def curve(run_dir: Path) -> dict[str, list[float]]:
    """Gradient step, training seconds and held-out accuracy at each evaluation of a run."""
    rows = list(csv.DictReader((run_dir / "eval.csv").open()))
    return {key: [float(row[key]) for row in rows] for key in ("step", "seconds", "accuracy")}


def first_step_reaching(run_dir: Path, accuracy: float) -> float | None:
    """The first evaluated gradient step with held-out accuracy >= `accuracy`, if any."""
    points = curve(run_dir)
    return next(
        (step for step, value in zip(points["step"], points["accuracy"], strict=True) if value >= accuracy), None
    )


def final_weights(run_dir: Path) -> str:
    """The importance weights' min-max (ESS) in the last logged batch; empty for unweighted methods."""
    rows = list(csv.DictReader((run_dir / "train.csv").open()))
    if not rows or not rows[-1].get("weight_min"):
        return ""
    last = rows[-1]
    return f"{float(last['weight_min']):.2f}-{float(last['weight_max']):.2f} ({float(last['weight_ess']):.1f})"


def mean_std(values: list[float], scale: float = 1.0, digits: int = 1) -> str:
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{scale * statistics.fmean(values):.{digits}f} ± {scale * std:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="tiny_lm", help="tiny_lm | smollm2 | any policy= choice")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--train", action="store_true", help="train the runs that are missing")
    parser.add_argument("--reduced", action="store_true", help="the CPU-sized run of REDUCED (for SmolLM2)")
    parser.add_argument("--reached", type=float, default=0.75, help="accuracy whose first evaluated step is reported")
    parser.add_argument("--runs-root", type=Path, default=Path("runs/text"))
    parser.add_argument("--overrides", nargs="*", default=[], help="more `rlsft train` overrides for every run")
    parser.add_argument("--out", type=Path, default=None, help="default benchmarks/results/text_accuracy_<policy>.md")
    args = parser.parse_args()
    label = f"{args.policy}{'_reduced' if args.reduced else ''}"
    out = args.out or Path(f"benchmarks/results/text_accuracy_{label}.md")

    base = base_accuracy(args)
    # Seed by seed, so that an interrupted benchmark has every method at the first seeds.
    runs = {(method, seed): run_method(method, seed, args) for seed in args.seeds for method in args.methods}
    results = {m: [runs[m, seed] for seed in args.seeds if runs[m, seed]] for m in args.methods}
    results = {method: dirs for method, dirs in results.items() if dirs}  # methods with at least one run
    summaries = {m: [json.loads((d / "summary.json").read_text()) for d in dirs] for m, dirs in results.items()}
    first = next(iter(summaries.values()))[0]
    lines = [
        f"# Held-out accuracy on arithmetic: {args.policy}{' (reduced CPU run)' if args.reduced else ''}",
        "",
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{'CUDA' if torch.cuda.is_available() else 'CPU only'}; torch {torch.__version__}, "
        f"transformers {transformers.__version__}",
        f"- held-out prompts: {first['episodes']} (greedy, exact numeric); seeds {args.seeds}; runs under "
        f"`{args.runs_root / args.policy}`",
        "",
        "| method | seeds | accuracy % (mean ± std over seeds) | training seconds | gradient steps | first evaluated step"
        f" at >= {args.reached:.0%} | data | last batch's weights: min-max (ESS), first seed found |",
        "|---|---:|---:|---:|---:|---:|---|---|",
        f"| base (start model) | | {100 * base:.1f} | 0 | 0 | | | |",
    ]
    for method, runs in summaries.items():
        data = f"{runs[0].get('completions_kept', '')} of {runs[0].get('completions_total', '')} kept"
        reached = [step for d in results[method] if (step := first_step_reaching(d, args.reached)) is not None]
        lines.append(
            f"| {method} | {len(runs)} | {mean_std([r['accuracy'] for r in runs], 100)} | {mean_std([r['seconds'] for r in runs], 1, 0)}"
            f" | {runs[0]['steps']} | {mean_std(reached, 1, 0) if reached else 'never'} ({len(reached)} of {len(runs)}"
            f" seeds) | {data if 'completions_kept' in runs[0] else 'fresh completions'} | {final_weights(results[method][0])} |"
        )
    # Wall-clock on a shared machine is noisy, so accuracy is also shown against gradient steps.
    figure, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for method, dirs in results.items():
        curves = [curve(d) for d in dirs]
        points = min(len(c["step"]) for c in curves)
        mean = {key: [statistics.fmean(c[key][i] for c in curves) for i in range(points)] for key in curves[0]}
        accuracy = [100 * base, *(100 * value for value in mean["accuracy"])]
        for axis, x in zip(axes, ("seconds", "step"), strict=True):
            axis.plot([0, *mean[x]], accuracy, marker="o", markersize=3, label=method)
    axes[0].set(xlabel="training wall-clock (s)", ylabel="held-out accuracy (%)", title=f"arithmetic, {label}")
    axes[1].set(xlabel="gradient step", xscale="symlog", title="the same against gradient steps")
    axes[0].legend()
    plot = out.with_suffix(".png")
    figure.savefig(plot, dpi=120)
    lines += ["", f"![accuracy against training time]({plot.name})", ""]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
