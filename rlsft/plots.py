"""Figures from a run's CSV metrics."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is assumed
import matplotlib.pyplot as plt  # noqa: E402


def read_columns(path: Path, x: str, y: str) -> tuple[list[float], list[float]]:
    """The (x, y) pairs of a metrics CSV where y was logged."""
    if not path.exists():
        return [], []
    rows = [row for row in csv.DictReader(path.open()) if row.get(y)]
    return [float(row[x]) for row in rows], [float(row[y]) for row in rows]


def learning_curve(run_dir: str | Path, title: str, score: str = "normalized_score") -> Path:
    """`learning_curve.png`: training loss and the evaluation metric `score` against gradient steps."""
    run_dir = Path(run_dir)
    figure, (loss_axis, score_axis) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    loss_axis.plot(*read_columns(run_dir / "train.csv", "step", "loss"), linewidth=1)
    loss_axis.set(xlabel="gradient step", ylabel="training loss", title="loss")
    score_axis.plot(*read_columns(run_dir / "eval.csv", "step", score), marker="o")
    score_axis.set(xlabel="gradient step", ylabel=score.replace("_", " "), title="evaluation (deterministic)")
    figure.suptitle(title)
    path = run_dir / "learning_curve.png"
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
