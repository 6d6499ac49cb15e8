"""logger=[csv,tensorboard,wandb]: the CSV record always, its mirrors as chosen; wandb offline without network."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import small_run

from rlsft.cli import main

pytest.importorskip("wandb")


def wandb_records(run_dir: Path) -> bytes:
    """The bytes of the run's offline wandb files (protobuf records holding each value as JSON text)."""
    files = sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert files, f"no offline wandb run in {run_dir}"
    return b"".join(path.read_bytes() for path in files)


@pytest.fixture
def no_network_account(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)


def test_wandb_runs_offline_in_the_run_folder_with_the_csvs_metrics(
    no_network_account, hopper_minari, data_dir, tmp_path, capsys
):
    run_dir = tmp_path / "run"
    argv = small_run(hopper_minari, data_dir, run_dir, "algorithm=bc", "learner.steps=10", "evaluation.every=5",
                     "evaluation.interim_episodes=1", "log_every=2", "logger=[csv,tensorboard,wandb]")  # fmt: skip
    assert main(argv) == 0
    records = wandb_records(run_dir)
    with (run_dir / "train.csv").open() as file:
        rows = list(csv.DictReader(file))
    assert len(rows) == 5
    for row in rows:  # every value train.csv holds, as wandb wrote it (JSON of the same float)
        for name in ("loss", "grad_norm", "lr"):
            assert f"train/{name}".encode() in records and json.dumps(float(row[name])).encode() in records, name
    with (run_dir / "eval.csv").open() as file:
        final = list(csv.DictReader(file))[-1]
    assert json.dumps(float(final["normalized_score"])).encode() in records
    assert str(run_dir).encode() in records  # the resolved config travels with the run
    assert any((run_dir / "tensorboard").iterdir())
    capsys.readouterr()


def test_a_sweeps_wandb_runs_are_grouped_by_the_sweeps_name(
    no_network_account, hopper_minari, data_dir, tmp_path, capsys
):
    sweep = tmp_path / "sweeps" / "my-sweep"
    argv = small_run(hopper_minari, data_dir, tmp_path / "unused", "algorithm=bc", "learner.steps=2",
                     "evaluation.every=0", "evaluation.episodes=1", "logger=[csv,wandb]")  # fmt: skip
    argv = [a for a in argv if not a.startswith("run_dir=")]
    assert main([*argv, "-m", "seed=0,1", f"hydra.sweep.dir={sweep}", f"run_dir={tmp_path}/runs/seed${{seed}}"]) == 0
    for seed in (0, 1):
        assert b"my-sweep" in wandb_records(tmp_path / "runs" / f"seed{seed}")
    capsys.readouterr()


@pytest.mark.parametrize(
    "logger, message",
    [
        ("[tensorboard]", "leaves out csv, the run's record that resume and the reports read; keep it"),
        ("[csv,mlflow]", "Unknown logger 'mlflow'; logger= takes a list of ['csv', 'tensorboard', 'wandb']"),
    ],
)
def test_a_logger_mistake_is_one_sentence(logger, message, hopper_minari, data_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(small_run(hopper_minari, data_dir, run_dir, "algorithm=bc", f"logger={logger}")) == 2
    assert message in capsys.readouterr().err
    assert not run_dir.exists()
