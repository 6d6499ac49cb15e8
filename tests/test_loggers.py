"""logger=[csv,tensorboard,wandb]: the CSV record always, its mirrors as chosen; wandb offline without network."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from conftest import small_run
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

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


def steps(path: Path) -> list[int]:
    with path.open() as file:
        return [int(row["step"]) for row in csv.DictReader(file)]


def tensorboard_steps(run_dir: Path, tag: str) -> list[int]:
    """The steps of `tag` as TensorBoard shows them: events that a later session purged are left out."""
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return [event.step for event in events.Scalars(tag)]


def test_a_resumed_run_keeps_every_row_in_tensorboard_and_the_users_own_csvs(hopper_minari, data_dir, tmp_path, capsys):
    """The mirror once purged the checkpoint's own step, which the CSV keeps and the resumed run does not log
    again; and resuming truncated every CSV in the folder, a user's own too."""
    run_dir = tmp_path / "run"

    def argv(steps: int) -> list[str]:
        return small_run(hopper_minari, data_dir, run_dir, "algorithm=bc", f"learner.steps={steps}", "log_every=2",
                         "evaluation.every=0", "evaluation.episodes=1", "logger=[csv,tensorboard]")  # fmt: skip

    assert main(argv(10)) == 0
    returns, notes = "step,return\n5,1.0\n40,2.0\n", "model,remark\nsmall,kept as it was\n"
    (run_dir / "returns.csv").write_text(returns)
    (run_dir / "notes.csv").write_text(notes)
    assert main(argv(20)) == 0  # resumes from the checkpoint at step 10
    assert steps(run_dir / "train.csv") == tensorboard_steps(run_dir, "train/loss") == list(range(2, 21, 2))
    assert steps(run_dir / "eval.csv") == tensorboard_steps(run_dir, "eval/normalized_score") == [10, 20]
    assert (run_dir / "returns.csv").read_text() == returns and (run_dir / "notes.csv").read_text() == notes
    assert not list(run_dir.glob(".*.tmp"))
    capsys.readouterr()


def test_a_run_stopped_before_its_first_checkpoint_starts_its_record_over(hopper_minari, data_dir, tmp_path, capsys):
    """Without a checkpoint the run starts at step 0 and evaluates it again: the earlier step-0 row went on."""
    run_dir = tmp_path / "run"
    argv = small_run(hopper_minari, data_dir, run_dir, "algorithm=bc", "learner.steps=4", "evaluation.every=2",
                     "evaluation.interim_episodes=1", "evaluation.episodes=1", "logger=[csv,tensorboard]")  # fmt: skip
    assert main(argv) == 0
    (run_dir / "checkpoint.pt").unlink()  # as a run stopped before its first checkpoint leaves its folder
    (run_dir / "summary.json").unlink(missing_ok=True)
    assert main(argv) == 0
    assert steps(run_dir / "eval.csv") == tensorboard_steps(run_dir, "eval/normalized_score") == [0, 2, 4]
    assert steps(run_dir / "train.csv") == tensorboard_steps(run_dir, "train/loss") == [4]  # log_every=5: the last
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
