"""Suite `control`: the SFT family on D4RL-style datasets, as hydra sweeps, and its report.

Per dataset and algorithm one hydra sweep over the seeds whose run is not finished (its folder has no
summary.json), each job an `rlsft train` in <root>/<dataset>/<algorithm>/seed<k>: an interrupted bench
resumes (a job cut short continues from its checkpoint), and the runs' small files are all a report needs.
The report is built from those run folders alone: per dataset pi_ref's score (the fine-tuning runs'
step-0 evaluation), each algorithm's final and best normalised score, mean +- std over seeds; across
datasets rliable's aggregates (bench/aggregate.py); learning curves and importance-weight plots.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from rlsft.algorithms import Algorithm
from rlsft.bench.aggregate import aggregate_scores
from rlsft.bench.report import REFERENCE, cell, environment, mean_std, write_report
from rlsft.configs import default_budget
from rlsft.errors import RLSFTError
from rlsft.sweep import multirun
from rlsft.trainer import train


@dataclass
class Run:
    """One finished run, as its folder holds it."""

    final: float  # the final evaluation's normalised score
    best: float  # the best evaluation's, interim ones included
    start: float | None  # the step-0 evaluation's (pi_ref's for fine-tuning algorithms)
    curve: list[tuple[int, float]]  # (step, normalised score) of every evaluation
    weights: list[tuple[int, float, float]]  # (step, ESS, max weight) of iw-SFT's training rows
    command: str


def run_folder(cfg: DictConfig, dataset: str, algorithm: str, seed: int) -> Path:
    return Path(cfg.root).expanduser() / dataset / algorithm / f"seed{seed}"


def train_overrides(cfg: DictConfig, dataset: str, algorithm: str, seeds: list[int]) -> list[str]:
    """The sweep of one dataset and algorithm over `seeds`, each run in its own folder."""
    spec = cfg.sizes[cfg.size].datasets[dataset]
    return default_budget([
        f"env={spec.env}", f"data={spec.data}", f"data_dir={cfg.data_dir}", f"algorithm={algorithm}",
        f"seed={','.join(str(seed) for seed in seeds)}", "progress=false",
        f"run_dir={Path(cfg.root).expanduser() / dataset / algorithm}/seed${{seed}}", *cfg.sizes[cfg.size].train,
    ])  # fmt: skip


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def read_run(folder: Path, command: str) -> Run:
    summary = json.loads((folder / "summary.json").read_text())
    evaluations = [(int(row["step"]), float(row["normalized_score"])) for row in read_rows(folder / "eval.csv")]
    weights = [
        (int(row["step"]), float(row["weight_ess"]), float(row["weight_max"]))
        for row in read_rows(folder / "train.csv")
        if row.get("weight_ess")
    ]
    start = evaluations[0][1] if evaluations and evaluations[0][0] == 0 else None
    best = max(score for _, score in evaluations)
    return Run(float(summary["normalized_score"]), best, start, evaluations, weights, command)


def collect(cfg: DictConfig) -> dict[str, dict[str, dict[int, Run]]]:
    """Every run of the size, read from its folder: dataset -> algorithm -> seed -> Run."""
    size, runs, missing = cfg.sizes[cfg.size], {}, []
    for dataset in size.datasets:
        for algorithm in cfg.algorithms:
            for seed in size.seeds:
                command = "rlsft train " + " ".join(train_overrides(cfg, dataset, algorithm, [seed]))
                folder = run_folder(cfg, dataset, algorithm, seed)
                if not (folder / "summary.json").is_file():
                    missing.append(str(folder))
                    continue
                runs.setdefault(dataset, {}).setdefault(algorithm, {})[seed] = read_run(folder, command)
    if missing:
        raise RLSFTError(
            f"{len(missing)} runs of the control suite are not finished (the first: {missing[0]}); run"
            f" `rlsft bench control size={cfg.size}` (train=true) to train them, or fix root=."
        )
    return runs


def per_dataset(runs: dict) -> dict:
    """Each dataset's scores: pi_ref's and every algorithm's final and best, each seed's and their mean +- std."""
    table = {}
    for dataset, by_algorithm in runs.items():
        rows = {}
        starts = [run.start for algorithm, seeds in by_algorithm.items() for run in seeds.values()
                  if Algorithm.registry[algorithm].init_from_reference and run.start is not None]  # fmt: skip
        if starts:
            rows[REFERENCE] = {"final": mean_std(starts)}
        for algorithm, seeds in by_algorithm.items():
            rows[algorithm] = {
                "final": mean_std([run.final for run in seeds.values()]),
                "best": mean_std([run.best for run in seeds.values()]),
                "seeds": {seed: {"final": run.final, "best": run.best, "start": run.start, "command": run.command}
                          for seed, run in seeds.items()},
            }  # fmt: skip
        table[dataset] = rows
    return table


def disagreements(table: dict) -> list[str]:
    """Sentences where the measured order contradicts the paper's (method.md §5): the algorithm the paper
    finds better is below by more than the larger of the two stds over seeds."""
    claims = [("iw_sft", "sft", "iw-SFT is below SFT"), ("iw_sft_q", "sft_q", "iw-SFT(Q) is below SFT(Q)"),
              ("sft_q", "filtered_sft", "SFT(Q) is below 10% BC")]  # fmt: skip
    said = []
    for dataset, rows in table.items():
        for better, worse, words in claims:
            if better not in rows or worse not in rows:
                continue
            b, w = rows[better]["final"], rows[worse]["final"]
            if w["mean"] - b["mean"] > max(b["std"], w["std"]):
                said.append(f"{dataset}: {words} ({cell(b)} against {cell(w)}), unlike the paper.")
    return said


def sweep(cfg: DictConfig, dataset: str, algorithm: str, seeds: list[int]) -> None:
    sweep_dir = Path(cfg.root).expanduser() / "sweeps" / dataset / algorithm
    result = multirun(
        "train", [*train_overrides(cfg, dataset, algorithm, seeds), f"hydra.sweep.dir={sweep_dir}"], train
    )
    if result["failed"]:
        first = next(job["error"] for job in result["jobs"] if "error" in job)
        raise RLSFTError(f"{result['failed']} runs of {algorithm} on {dataset} failed (the first: {first})")


def run(cfg: DictConfig) -> dict:
    """Train every run of the size that is not finished (train=true), then write the report."""
    if cfg.size not in cfg.sizes:
        raise RLSFTError(f"Unknown bench size {cfg.size!r}; choose one of {sorted(cfg.sizes)}.")
    if cfg.train:  # a run is finished when its folder has a summary: only the others are swept
        for dataset in cfg.sizes[cfg.size].datasets:
            for algorithm in cfg.algorithms:
                seeds = [seed for seed in cfg.sizes[cfg.size].seeds
                         if not (run_folder(cfg, dataset, algorithm, seed) / "summary.json").is_file()]  # fmt: skip
                if seeds:
                    sweep(cfg, dataset, algorithm, seeds)
    runs = collect(cfg)
    table = per_dataset(runs)
    scores = {algorithm: np.array([[runs[d][algorithm][s].final for d in runs] for s in cfg.sizes[cfg.size].seeds])
              for algorithm in cfg.algorithms}  # fmt: skip
    aggregate = aggregate_scores(scores, cfg.bootstrap_reps)
    record = {
        "suite": "control", "size": cfg.size, "config": OmegaConf.to_container(cfg, resolve=True),
        "environment": environment(), "datasets": table, "aggregate": aggregate, "disagreements": disagreements(table),
    }  # fmt: skip
    return write_report(Path(cfg.results).expanduser(), record, runs, scores)
