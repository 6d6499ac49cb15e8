"""Grid suites (`control`, `text`): tasks x methods x seeds, each an `rlsft train`, and their report.

A suite's YAML names its tasks (datasets, or model and text task) and methods, each a set of `rlsft
train` overrides, and the score its runs report. Per task and method one hydra sweep runs the seeds
whose run is not finished (its folder has no summary.json), each in <root>/<task>/<method>/seed<k>: an
interrupted bench resumes (a job cut short continues from its checkpoint), a finished run made with other
settings is refused, not read, and the runs' small files are all a report needs. The report, built from
those folders alone: per task the start policy's score (the runs' step-0 evaluation: pi_ref for control,
the start model for text), each method's final and best score, mean +- std over seeds; across tasks
rliable's aggregates (bench/aggregate.py); plots.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from rlsft import stopping
from rlsft.bench.aggregate import aggregate_scores
from rlsft.bench.report import REFERENCE, beside_report, cell, environment, mean_std, write_report
from rlsft.configs import default_budget
from rlsft.errors import RLSFTError, RunStopped, did_you_mean
from rlsft.sweep import multirun
from rlsft.trainer import train


@dataclass
class Run:
    """One finished run, as its folder holds it."""

    final: float  # the final evaluation's normalised score
    best: float  # the best evaluation's after step 0, interim ones included
    start: float | None  # the step-0 evaluation's (pi_ref's for fine-tuning algorithms)
    curve: list[tuple[int, float]]  # (step, normalised score) of every evaluation
    weights: list[tuple[int, float, float]]  # (step, ESS, max weight) of iw-SFT's training rows
    command: str
    sampled: list[tuple[int, float]]  # (step, trajectories sampled by then: offline data, rollouts, rounds)
    seconds: list[tuple[int, float]]  # (step, training seconds by then) of every evaluation


def chosen_tasks(cfg: DictConfig) -> list[str]:
    """The size's tasks that `tasks=` names (all of them by default), in the size's order: one bench split over
    processes or machines, each with its own tasks and the same root, ends in one report over all of them."""
    offered = list(cfg.sizes[cfg.size].tasks)
    if cfg.tasks is None:
        return offered
    named = [cfg.tasks] if isinstance(cfg.tasks, str) else list(cfg.tasks)
    if not named:
        raise RLSFTError(f"tasks=[] names no task; name some of {offered}, or leave tasks= out for all of them.")
    for name in named:
        if name not in offered:
            raise RLSFTError(
                f"tasks={name} is not a task of the {cfg.suite} suite's size {cfg.size}{did_you_mean(name, offered)};"
                f" choose from {offered}."
            )
    return [task for task in offered if task in named]


def run_folder(cfg: DictConfig, task: str, method: str, seed: int) -> Path:
    return Path(cfg.root).expanduser() / task / method / f"seed{seed}"


def as_overrides(settings: DictConfig | None) -> list[str]:
    """`{key: value}` as `key=value` overrides (lists as hydra writes them); None: none."""
    if settings is None:
        return []
    return [f"{key}={value}" for key, value in OmegaConf.to_container(settings, resolve=True).items()]


def run_settings(cfg: DictConfig, task: str, method: str) -> tuple[list[str], list[str]]:
    """What makes a run the one of this task and method: the task's and the method's settings, and the size's
    and the size's for this method (the folder's settings go between the two in a command)."""
    size = cfg.sizes[cfg.size]
    return (
        [*as_overrides(size.tasks[task]), *as_overrides(cfg.methods[method])],
        [*size.train, *as_overrides(OmegaConf.select(size, f"methods.{method}"))],
    )


def quoted(path: Path) -> str:
    """A path as one value of a hydra override: quoted, so that its spaces, commas and `=` are its own."""
    return "'" + str(path).replace("'", "\\'") + "'"


def train_overrides(cfg: DictConfig, task: str, method: str, seeds: list[int]) -> list[str]:
    """The sweep of one task and method over `seeds`, each run in its own folder; later settings win."""
    chosen, sized = run_settings(cfg, task, method)
    run_dir = Path(cfg.root).expanduser() / task / method / "seed${seed}"
    return default_budget([
        *chosen, f"data_dir={quoted(Path(cfg.data_dir).expanduser())}", f"seed={','.join(str(seed) for seed in seeds)}",
        "progress=false", f"run_dir={quoted(run_dir)}", *sized,
    ])  # fmt: skip


def finished(cfg: DictConfig, task: str, method: str, seed: int) -> bool:
    """Whether the run's folder holds a finished run (its summary). A finished run of other settings (another
    dataset version, or size, in the same root=) is refused rather than read as this one."""
    folder = run_folder(cfg, task, method, seed)
    if not (folder / "summary.json").is_file():
        return False
    recorded = OmegaConf.load(folder / "config.yaml")
    chosen, sized = run_settings(cfg, task, method)
    parser = OverridesParser.create()
    asked = {}  # later settings win, as in the command; each value as hydra reads it (1e-4 is 0.0001, true is True)
    for setting in [*chosen, *sized]:
        override = parser.parse_override(setting)
        asked[override.key_or_group] = (setting.split("=", 1)[1], override.value())
    for key, (text, value) in asked.items():
        found = OmegaConf.select(recorded, key)
        if found is not None and not OmegaConf.is_config(found) and found != value:  # a group's choice: a dict
            raise RLSFTError(
                f"{folder} holds a finished run with {key}={found}, not the {text} that {task} asks for; pass another"
                f" root= for this bench's runs (or delete that folder to train it again)."
            )
    return True


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


def sampled_by_step(summary: dict, train: list[dict[str, str]]) -> dict[int, float]:
    """Trajectories a run sampled by each logged step: its offline data (the summary's `*_total`: the start
    model's completions, the dataset's episodes) and what it drew since (fresh `completions`, the rounds'
    `resampled`; a mix's under its parts' names)."""
    offline = sum(
        float(value) for key, value in summary.items() if key.endswith(("completions_total", "trajectories_total"))
    )
    fresh = ("completions", "resampled")
    return {0: offline} | {
        int(row["step"]): offline + sum(float(value) for key, value in row.items() if key.endswith(fresh) and value)
        for row in train
    }


def at_step(values: dict[int, float], step: int) -> float:
    """The value logged last at or before `step`."""
    return values[max(logged for logged in values if logged <= step)]


def read_run(folder: Path, command: str, score: str, scale: float) -> Run:
    """A finished run's scores, times `scale` (100: an accuracy in percent)."""
    summary = json.loads((folder / "summary.json").read_text())
    rows, train = read_rows(folder / "eval.csv"), read_rows(folder / "train.csv")
    evaluations = [(int(row["step"]), scale * float(row[score])) for row in rows]
    weights = [
        (int(row["step"]), float(row["weight_ess"]), float(row["weight_max"])) for row in train if row.get("weight_ess")
    ]
    sampled = sampled_by_step(summary, train)
    start = evaluations[0][1] if evaluations and evaluations[0][0] == 0 else None
    best = max(score for step, score in evaluations if step > 0)  # the training's, not the start's
    return Run(
        scale * float(summary[score]), best, start, evaluations, weights, command,
        sampled=[(step, at_step(sampled, step)) for step, _ in evaluations],
        seconds=[(int(row["step"]), float(row["seconds"])) for row in rows],
    )  # fmt: skip


def collect(cfg: DictConfig) -> dict[str, dict[str, dict[int, Run]]]:
    """Every run of the size's chosen tasks, read from its folder: task -> method -> seed -> Run."""
    size, runs, missing = cfg.sizes[cfg.size], {}, []
    for task in chosen_tasks(cfg):
        for method in cfg.methods:
            for seed in size.seeds:
                command = "rlsft train " + " ".join(train_overrides(cfg, task, method, [seed]))
                folder = run_folder(cfg, task, method, seed)
                if not finished(cfg, task, method, seed):
                    missing.append(str(folder))
                    continue
                runs.setdefault(task, {}).setdefault(method, {})[seed] = read_run(
                    folder, command, cfg.score, cfg.score_scale
                )
    if missing:
        raise RLSFTError(
            f"{len(missing)} runs of the {cfg.suite} suite are not finished (the first: {missing[0]}); run"
            f" `rlsft bench {cfg.suite} size={cfg.size}` (train=true) to train them, or fix root=."
        )
    return runs


def per_task(runs: dict, reference_methods: list[str]) -> dict:
    """Each task's scores: the start policy's (the step-0 evaluations of `reference_methods`' runs) and
    every method's final and best, each seed's and their mean +- std."""
    table = {}
    for task, by_method in runs.items():
        rows = {}
        starts = [run.start for method, seeds in by_method.items() for run in seeds.values()
                  if method in reference_methods and run.start is not None]  # fmt: skip
        if starts:
            rows[REFERENCE] = {"final": mean_std(starts)}
        for method, seeds in by_method.items():
            rows[method] = {
                "final": mean_std([run.final for run in seeds.values()]),
                "best": mean_std([run.best for run in seeds.values()]),
                "sampled": mean_std([run.sampled[-1][1] for run in seeds.values()]),
                "seconds": mean_std([run.seconds[-1][1] for run in seeds.values()]),
                "seeds": {seed: {"final": run.final, "best": run.best, "start": run.start, "command": run.command}
                          for seed, run in seeds.items()},
            }  # fmt: skip
        table[task] = rows
    return table


def disagreements(table: dict, claims: list) -> list[str]:
    """Sentences where the measured order contradicts the paper's (method.md §5): the method the paper
    finds better is below by more than the larger of the two stds over seeds."""
    said = []
    for task, rows in table.items():
        for better, worse, words in claims:
            if better not in rows or worse not in rows:
                continue
            b, w = rows[better]["final"], rows[worse]["final"]
            if w["mean"] - b["mean"] > max(b["std"], w["std"]):
                said.append(f"{task}: {words} ({cell(b)} against {cell(w)}), unlike the paper.")
    return said


def sweep(cfg: DictConfig, task: str, method: str, seeds: list[int]) -> None:
    sweep_dir = Path(cfg.root).expanduser() / "sweeps" / task / method
    result = multirun(
        "train", [*train_overrides(cfg, task, method, seeds), f"hydra.sweep.dir={quoted(sweep_dir)}"], train
    )
    if stopping.requested():  # a job stopped with a checkpoint, and none started after it
        raise RunStopped(
            f"The bench stopped on SIGTERM while training {method} on {task}; run the same command to go on."
        )
    if result["failed"]:
        first = next(job["error"] for job in result["jobs"] if "error" in job)
        raise RLSFTError(f"{result['failed']} runs of {method} on {task} failed (the first: {first})")


def check_report_settings(cfg: DictConfig) -> None:
    """The settings the report reads, each wrong one said in one sentence before any training, not after it."""
    seeds = cfg.sizes[cfg.size].seeds
    if not (OmegaConf.is_list(seeds) and len(seeds) > 0 and all(type(seed) is int for seed in seeds)):
        raise RLSFTError(f"sizes.{cfg.size}.seeds={seeds} must be a non-empty list of integer seeds; fix it.")
    if type(cfg.bootstrap_reps) is not int or cfg.bootstrap_reps < 1:
        raise RLSFTError(
            f"bootstrap_reps={cfg.bootstrap_reps!r} must be a positive integer (the aggregates' bootstrap resamples);"
            " fix the override."
        )
    shapes = {"reference_methods": (None, "method names, [] for none"),
              "improvements": (2, "[better, worse] pairs of method names"),
              "claims": (3, "[better, worse, what it means when false] triples")}  # fmt: skip
    for key, (width, what) in shapes.items():
        value = cfg[key]
        items = list(value) if OmegaConf.is_list(value) else None
        fits = items is not None and all(
            isinstance(item, str) if width is None else OmegaConf.is_list(item) and len(item) == width for item in items
        )
        if not fits:
            raise RLSFTError(f"{key}={value} must be a list of {what}; fix the override.")


def run(cfg: DictConfig) -> dict:
    """Train every run of the size that is not finished (train=true), then write the report."""
    size = cfg.sizes[cfg.size]
    if size.get("only") is not None:  # a size that runs some of the suite's methods (SmolLM2's reduced CPU size)
        if unknown := [name for name in size.only if name not in cfg.methods]:
            raise RLSFTError(f"sizes.{cfg.size}.only names {unknown}, not methods of the {cfg.suite} suite; fix it.")
        cfg.methods = {name: cfg.methods[name] for name in size.only}
    if not cfg.methods:
        raise RLSFTError(f"The {cfg.suite} suite has no method left to run; delete fewer with ~methods.<name>.")
    check_report_settings(cfg)
    beside = beside_report(cfg.beside, cfg.suite)  # a bad beside= is said before the training, not after it
    if cfg.train:  # only the runs not finished (no summary in their folder) are swept
        for task in chosen_tasks(cfg):
            for method in cfg.methods:
                seeds = [seed for seed in size.seeds if not finished(cfg, task, method, seed)]
                if seeds:
                    sweep(cfg, task, method, seeds)
    runs = collect(cfg)
    table = per_task(runs, list(cfg.reference_methods))
    scores = {
        method: np.array([[runs[t][method][s].final for t in runs] for s in size.seeds]) for method in cfg.methods
    }
    pairs = [tuple(pair) for pair in cfg.improvements]
    record = {
        "suite": cfg.suite, "size": cfg.size, "config": OmegaConf.to_container(cfg, resolve=True),
        "environment": environment(), "tasks": table, "aggregate": aggregate_scores(scores, pairs, cfg.bootstrap_reps),
        "disagreements": disagreements(table, list(cfg.claims)), "beside": beside,
    }  # fmt: skip
    return write_report(Path(cfg.results).expanduser(), record, runs)
