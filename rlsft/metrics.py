"""Metrics to CSV (one file per stream: train, eval) and tensorboard, resumable at a step."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter


class MetricsLogger:
    """Appends rows `step, name...` to `<run_dir>/<stream>.csv` and mirrors them to tensorboard.

    On resume, rows past the checkpoint's step are dropped: they belong to the run that
    died, and the resumed run writes them again. With `write=False` (the ranks of a run that are
    not rank 0) it reads the earlier rows and writes nothing.
    """

    def __init__(self, run_dir: str | Path, resume_step: int = 0, write: bool = True) -> None:
        self.run_dir, self.write = Path(run_dir), write
        if write:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.tensorboard = (
            SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=resume_step or None) if write else None
        )
        self.columns: dict[str, list[str]] = {}
        self.last_rows: dict[str, dict[str, float]] = {}
        for path in self.run_dir.glob("*.csv"):
            with path.open(newline="") as file:
                rows = list(csv.reader(file))
            if not rows:
                continue
            header, kept = rows[0], [row for row in rows[1:] if int(row[0]) <= resume_step]
            if write:
                with path.open("w", newline="") as file:
                    csv.writer(file).writerows([header, *kept])
            self.columns[path.stem] = header[1:]
            if kept:
                self.last_rows[path.stem] = {name: float(value) for name, value in zip(header, kept[-1]) if value != ""}

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
            with path.open("w", newline="") as file:
                csv.writer(file).writerows([["step", *self.columns[stream]], *rows[1:]])
        with path.open("a", newline="") as file:
            csv.writer(file).writerow([step, *(row.get(n, "") for n in self.columns[stream])])
        for name, value in row.items():
            self.tensorboard.add_scalar(f"{stream}/{name}", value, step)
        return row

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
