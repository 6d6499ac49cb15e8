"""`rlsft train -m ...` and `rlsft train --cfg job|hydra|all`: rlsft's train config through hydra's own app.

A multirun is hydra's: its sweeper expands `key=a,b,c` lists into jobs and its launcher runs them (the
basic launcher one after another; `hydra/launcher=joblib` in local processes and `hydra/launcher=
submitit_slurm` on a SLURM cluster, from the `sweep` extra). Each job is a `rlsft train` with its own
run_dir, so a job that finished before returns its summary instead of training again. The sweep folder
(`hydra.sweep.dir`, default runs/sweeps/<time>) holds hydra's record of the sweep (multirun.yaml, each
job's overrides) and each job's result.json, marked with its launch: a sweep into a folder that an earlier
one used reports its own jobs alone. A job's mistake is its own one sentence, not the sweep's end.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig

from rlsft import stopping
from rlsft.configs.compose import checked_choices, compose_config, search_paths, with_parts
from rlsft.distributed import launched_rank
from rlsft.errors import MISTAKES, RunStopped, mistake

RESULT = "result.json"


def first_job(overrides: list[str]) -> list[str]:
    """The overrides of a sweep's first job (`key=a,b` -> `key=a`), to check keys and choices before launching."""
    first = []
    for override in overrides:
        key, _, value = override.partition("=")
        if key.startswith("hydra") and key != "hydra.searchpath":  # the launcher's settings: hydra checks them
            continue
        swept = "," in value and not value.startswith(("[", "{", "'", '"')) and not key.startswith("hydra")
        first.append(f"{key}={value.split(',')[0]}" if swept else override)
    return first


def check(name: str, overrides: list[str]) -> None:
    """Every choice of a sweep and its first job's keys and values, before hydra starts: a mistake is one
    sentence (did you mean ...), not hydra's message from inside a job."""
    checked_choices(overrides)
    compose_config(name, first_job(overrides))


def hydra_app(
    name: str, flags: list[str], overrides: list[str], task: Callable[[DictConfig], dict], launch: str = ""
) -> None:
    """Run `task` as hydra's app `name` would with these command-line `flags` (`-m`, `--cfg all`, ...); each
    job's result.json is marked with `launch`."""

    def job(cfg: DictConfig) -> None:
        if cfg.get("wandb") is not None and cfg.wandb.group is None and HydraConfig.get().mode == RunMode.MULTIRUN:
            cfg.wandb.group = Path(HydraConfig.get().sweep.dir).name  # a sweep's jobs, grouped by its name
        try:
            if stopping.requested():  # the process was asked to stop during an earlier job
                raise RunStopped("not started: the sweep was asked to stop (SIGTERM).")
            if name == "train":  # a mix's parts, composed as compose_config composes them
                cfg = with_parts(cfg, search_paths(list(HydraConfig.get().overrides.hydra)))
            # a launcher's worker process (joblib's), to which the sweep passes SIGTERM on, holds it as a request
            # for the whole job; the sweep's own process, as outside a sweep
            worker = multiprocessing.parent_process() is not None
            with stopping.sigterm_requests_a_stop() if worker else contextlib.nullcontext():
                result = {"summary": task(cfg)}
        except MISTAKES as error:
            if (sentence := mistake(error)) is None:
                raise
            print(f"rlsft: error: {sentence}", file=sys.stderr)
            result = {"error": str(sentence)}
        except RunStopped as stop:  # the job's run holds a checkpoint of the step it stopped at
            result = {"error": str(stop), "stopped": True}
        if launched_rank() > 0:  # a job of several tasks (tasks_per_node): rank 0 reports it
            return
        output = Path(HydraConfig.get().runtime.output_dir)
        result["overrides"] = list(HydraConfig.get().overrides.task)
        result["launch"] = launch
        (output / RESULT).write_text(json.dumps(result, indent=2))

    app = hydra.main(config_path="configs", config_name=name, version_base="1.3")(job)
    argv = sys.argv
    sys.argv = ["rlsft", *flags, *overrides]
    try:
        app()
    finally:
        sys.argv = argv


def multirun(name: str, overrides: list[str], task: Callable[[DictConfig], dict]) -> dict:
    """Every job of the sweep `overrides` describe, through hydra's sweeper and launcher; their results."""
    check(name, overrides)
    if not any(override.startswith("hydra.sweep.dir=") for override in overrides):
        overrides = [*overrides, f"hydra.sweep.dir=runs/sweeps/{time.strftime('%Y-%m-%d_%H-%M-%S')}"]
    setting = [override for override in overrides if override.startswith("hydra.sweep.dir=")][-1]  # the last wins
    # the folder as hydra reads the setting (a quoted path unquoted), where the jobs' results will be
    sweep_dir = Path(OverridesParser.create().parse_override(setting).value())
    sweep_dir.mkdir(parents=True, exist_ok=True)  # one sentence where it cannot be, not hydra's traceback
    launch = uuid.uuid4().hex  # this launch's jobs, told apart from those an earlier sweep left in the folder
    with stopping.sigterm_passed_on_to_workers():
        hydra_app(name, ["--multirun"], overrides, task, launch)
    results = (json.loads(path.read_text()) for path in sorted(sweep_dir.glob(f"*/{RESULT}"), key=job_number))
    jobs = [job for job in results if job.pop("launch", None) == launch]  # the mark itself is not reported
    return {"sweep_dir": str(sweep_dir), "jobs": jobs, "failed": sum("error" in job for job in jobs)}


def job_number(path: Path) -> int:
    return int(path.parent.name) if path.parent.name.isdigit() else -1
