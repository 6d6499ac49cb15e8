"""Checkpoints hold tensors and plain containers only: anything else is refused before it can run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import small_run

from rlsft import checkpoint
from rlsft.checkpoint import encode_state
from rlsft.cli import main


class Payload:
    """A pickled object that runs a shell command when unpickled: what a crafted checkpoint carries."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def error_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def assert_refused(code: int, capsys, marker: Path, *words: str) -> str:
    [line] = error_lines(capsys)
    assert code == 2 and line.startswith("rlsft: error: ") and "Traceback" not in line
    assert not marker.exists(), "the checkpoint's payload ran"
    assert "weights_only=False" not in line
    for word in words:
        assert word in line
    return line


@pytest.fixture
def bc_run(hopper_minari, data_dir, tmp_path, capsys) -> list[str]:
    argv = small_run(hopper_minari, data_dir, tmp_path / "run", "algorithm=bc", "learner.steps=4")
    assert main(argv) == 0
    capsys.readouterr()
    return argv


@pytest.mark.parametrize("where", ["top", "optimizer", "rng"])
def test_a_checkpoint_carrying_a_pickle_anywhere_is_refused_and_runs_nothing(bc_run, tmp_path, capsys, where):
    path = tmp_path / "run" / "checkpoint.pt"
    state, marker = checkpoint.load(path), tmp_path / "pwned"
    {"top": state, "optimizer": state["learner"]["optimizer"]["param_groups"][0], "rng": state["rng"]}[where][
        "extra"
    ] = Payload(marker)
    torch.save(state, path)
    config_before = (tmp_path / "run" / "config.yaml").read_text()
    assert_refused(main([*bc_run[:-1], "learner.steps=6"]), capsys, marker, str(path), "could run code")
    assert (tmp_path / "run" / "config.yaml").read_text() == config_before
    assert_refused(main(["evaluate", f"checkpoint={path}", "episodes=1"]), capsys, marker, "could run code")


def test_a_collector_workers_state_carrying_a_pickle_is_refused(tmp_path, capsys):
    """The workers' episodes once travelled as pickled bytes inside checkpoint.pt, loaded without
    weights_only: a PPO run with workers resuming from a crafted checkpoint ran the payload."""
    argv = ["train", "algorithm=ppo", "env=hopper", "algorithm.rollout.num_envs=2", "algorithm.rollout.workers=2",
            "algorithm.rollout.frames_per_env=16", "algorithm.rollout.minibatches=2", "algorithm.rollout.epochs=1",
            "evaluation.every=0", "evaluation.episodes=1", "progress=false", f"run_dir={tmp_path / 'ppo'}"]  # fmt: skip
    assert main([*argv, "learner.steps=2"]) == 0
    path, marker = tmp_path / "ppo" / "checkpoint.pt", tmp_path / "pwned"
    state = checkpoint.load(path)
    assert isinstance(state["source"]["env"]["worker0"]["episodes"], dict)  # plain containers, no pickled bytes
    for crafted in (
        {"episodes": encode_state(Payload(marker))},
        {"episodes": encode_state(Payload(marker)), "rng": torch.get_rng_state()},
    ):
        state["source"]["env"]["worker0"] = crafted
        torch.save(state, path)
        capsys.readouterr()
        assert_refused(main([*argv, "learner.steps=4"]), capsys, marker, str(path))


def test_corrupt_checkpoints_name_the_fix(bc_run, tmp_path, capsys):
    path = tmp_path / "run" / "checkpoint.pt"
    whole = path.read_bytes()
    for damaged in (whole[: len(whole) // 2], b"", b"not a checkpoint at all"):
        path.write_bytes(damaged)
        line = assert_refused(main(["evaluate", f"checkpoint={path}"]), capsys, tmp_path / "none", str(path))
        assert "delete it" in line
    # any other file is the user's: not to be deleted, and not a checkpoint to pass
    for other in (tmp_path / "run" / "train.csv", tmp_path / "run" / "config.yaml"):
        kept = other.read_bytes()
        line = assert_refused(main(["evaluate", f"checkpoint={other}"]), capsys, tmp_path / "none", str(other))
        assert "delete" not in line and line.endswith("; pass a run folder or its checkpoint.pt.")
        assert other.read_bytes() == kept


def test_evaluate_takes_a_run_folder_and_explains_a_folder_without_a_checkpoint(bc_run, tmp_path, capsys):
    assert main(["evaluate", f"checkpoint={tmp_path / 'run'}", "episodes=1"]) == 0
    capsys.readouterr()
    (tmp_path / "empty").mkdir()
    line = assert_refused(main(["evaluate", f"checkpoint={tmp_path / 'empty'}"]), capsys, tmp_path / "none")
    assert "does not exist" not in line and "folder" in line


def test_cached_completions_holding_a_pickle_are_refused(tmp_path):
    """tensordict's load_memmap unpickles non-tensor fields unless told not to."""
    from tensordict import NonTensorData, TensorDict

    from rlsft.data.text import load_cached
    from rlsft.errors import RLSFTError

    marker = tmp_path / "pwned"
    cache = TensorDict({"tokens": torch.zeros(2, 3), "note": NonTensorData(Payload(marker))}, batch_size=[2])
    cache.memmap(tmp_path / "cache")
    assert not marker.exists()  # writing ran nothing
    with pytest.raises(RLSFTError, match="cannot be read"):
        load_cached(tmp_path / "cache")
    assert not marker.exists()
