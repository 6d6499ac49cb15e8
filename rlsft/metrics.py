"""Metrics to CSV (one file per stream: train, eval), resumable at a step, and to its mirrors (tensorboard, wandb)."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch
from torch.utils.tensorboard import SummaryWriter

from rlsft.errors import RLSFTError

LOGGERS = ("csv", "tensorboard", "wandb")
STREAMS = ("train", "eval")  # the CSVs a run writes (a run folder may hold the user's own beside them)


def last_kept(resume_step: int) -> int:
    """The last step whose rows a run resumed at `resume_step` keeps: none at step 0, where the run starts over
    (its step-0 evaluation is written again)."""
    return resume_step if resume_step > 0 else -1


@dataclass
class WandbConfig:
    """`wandb.*` in configs/train.yaml."""

    project: str = "rlsft"
    group: str | None = None  # the sweep's name for a sweep's jobs
    mode: str = "auto"  # auto: online where WANDB_API_KEY is set and the API answers, else offline | online | offline


class Mirror(Protocol):
    """Where every CSV row also goes."""

    def log(self, stream: str, step: int, row: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class TensorboardMirror:
    def __init__(self, run_dir: Path, resume_step: int) -> None:
        # rows past the checkpoint's step, written before a crash, are purged as the CSV's are
        self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=last_kept(resume_step) + 1)

    def log(self, stream: str, step: int, row: dict[str, float]) -> None:
        for name, value in row.items():
            self.writer.add_scalar(f"{stream}/{name}", value, step)

    def close(self) -> None:
        self.writer.close()


def wandb_mode(mode: str) -> str:
    """`wandb.mode=auto` made concrete: WANDB_MODE where the user set it, online where an API key is set and the
    API answers within 3 s, else offline (the run's files stay in its folder; `wandb sync` uploads them later)."""
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if not os.environ.get("WANDB_API_KEY"):
        return "offline"
    try:
        socket.create_connection(("api.wandb.ai", 443), timeout=3).close()
    except OSError:
        return "offline"
    return "online"


class WandbMirror:
    """A Weights & Biases run in `<run_dir>/wandb`, named after the run folder, with the run's resolved config;
    its id comes from the folder, so a resumed run continues it (wandb keeps the steps it has, once)."""

    def __init__(self, run_dir: Path, settings: WandbConfig, config: dict) -> None:
        import wandb  # the `wandb` extra: check_loggers made sure it is there

        identity = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:16]
        self.run = wandb.init(
            project=settings.project, group=settings.group, name=run_dir.name, dir=str(run_dir), config=config,
            mode=wandb_mode(settings.mode), id=identity, resume="allow",
        )  # fmt: skip

    def log(self, stream: str, step: int, row: dict[str, float]) -> None:
        self.run.log({f"{stream}/{name}": value for name, value in row.items()}, step=step)

    def close(self) -> None:
        self.run.finish()


def check_loggers(loggers: Sequence[str]) -> None:
    """`logger` names known loggers, csv among them (the run's own record), and wandb only where it is installed."""
    if unknown := [name for name in loggers if name not in LOGGERS]:
        raise RLSFTError(f"Unknown logger {unknown[0]!r}; logger= takes a list of {list(LOGGERS)}.")
    if "csv" not in loggers:
        raise RLSFTError(
            f"logger={list(loggers)} leaves out csv, the run's record that resume and the reports read; keep it:"
            f" logger=[csv,{','.join(loggers)}]."
        )
    if "wandb" in loggers and importlib.util.find_spec("wandb") is None:
        raise RLSFTError("logger=wandb needs wandb: pip install -e '.[wandb]', or drop wandb from logger.")


def mirrors(loggers: Sequence[str], run_dir: Path, resume_step: int, wandb: WandbConfig, config: dict) -> list[Mirror]:
    """The mirrors `logger` names (checked by check_loggers)."""
    made: list[Mirror] = []
    if "tensorboard" in loggers:
        made.append(TensorboardMirror(run_dir, resume_step))
    if "wandb" in loggers:
        made.append(WandbMirror(run_dir, wandb, config))
    return made


def write_rows(path: Path, rows: list[list[str]]) -> None:
    """Write a CSV whole, so that a crash leaves the old file or the new one (as checkpoint.save_atomic does)."""
    tmp = path.with_name(f".{path.name}.tmp")  # one writer per run; checkpoint.remove_interrupted_writes clears it
    try:
        with tmp.open("w", newline="") as file:
            csv.writer(file).writerows(rows)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class MetricsLogger:
    """Appends rows `step, name...` to `<run_dir>/<stream>.csv` (a stream of STREAMS) and to each of its `mirrors`.

    On resume, rows past the checkpoint's step are dropped (all of them at step 0): they belong to the
    run that died, and the resumed run writes them again. With `write=False` (the ranks of a run that
    are not rank 0) it reads the earlier rows and writes nothing.
    """

    def __init__(
        self, run_dir: str | Path, resume_step: int = 0, write: bool = True, mirrors: Sequence[Mirror] = ()
    ) -> None:
        self.run_dir, self.write = Path(run_dir), write
        if write:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.mirrors = list(mirrors) if write else []
        self.columns: dict[str, list[str]] = {}
        self.last_rows: dict[str, dict[str, float]] = {}
        for stream in STREAMS:
            path = self.run_dir / f"{stream}.csv"
            if not path.is_file():
                continue
            with path.open(newline="") as file:
                rows = list(csv.reader(file))
            if not rows:
                continue
            header, kept = rows[0], [row for row in rows[1:] if int(row[0]) <= last_kept(resume_step)]
            if write:
                write_rows(path, [header, *kept])
            self.columns[stream] = header[1:]
            if kept:
                self.last_rows[stream] = {name: float(value) for name, value in zip(header, kept[-1]) if value != ""}

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def last_row(self, stream: str) -> dict[str, float] | None:
        """The latest row of `stream` kept from an earlier session (its `step` included), if any."""
        return self.last_rows.get(stream)

    def log(self, stream: str, step: int, metrics: dict[str, float | torch.Tensor]) -> dict[str, float]:
        """Write one row; tensors are fetched from the device here, in one transfer."""
        names = list(metrics)
        tensors = [torch.as_tensor(metrics[name], dtype=torch.float32) for name in names]
        device = next((t.device for t in tensors if t.device.type != "cpu"), torch.device("cpu"))
        values = torch.stack([t.to(device) for t in tensors]).tolist()  # stacked where they are, fetched once
        row = dict(zip(names, values, strict=True))
        if not self.write:
            return row
        path = self.run_dir / f"{stream}.csv"
        new_names = [n for n in names if n not in self.columns.get(stream, [])]
        if new_names:  # a metric seen for the first time (e.g. the first finished episode): widen the file
            rows = list(csv.reader(path.open(newline=""))) if stream in self.columns else [["step"]]
            self.columns[stream] = self.columns.get(stream, []) + new_names
            write_rows(path, [["step", *self.columns[stream]], *rows[1:]])
        with path.open("a", newline="") as file:
            csv.writer(file).writerow([step, *(row.get(n, "") for n in self.columns[stream])])
        for mirror in self.mirrors:
            mirror.log(stream, step, row)
        return row

    def close(self) -> None:
        for mirror in self.mirrors:
            mirror.close()
