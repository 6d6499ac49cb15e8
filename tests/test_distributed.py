"""Data-parallel training through torchrun on CPU (gloo): 2 real processes against one with the same global batch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import small_run

from rlsft import checkpoint
from rlsft.cli import main

REPOSITORY = Path(__file__).parents[1]


def torchrun(argv: list[str], processes: int = 2) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc-per-node N -m rlsft.cli <argv>`, one thread a process."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "rlsft.cli", *argv]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, env=environment, cwd=REPOSITORY, timeout=900)


@pytest.mark.parametrize("algorithm", ["bc", "iw_sft"])  # iw-SFT: self-normalised weights over the global batch
def test_ddp_on_two_processes_gives_one_processs_parameters(algorithm, hopper_minari, data_dir, tmp_path, capsys):
    settings = [f"algorithm={algorithm}", "learner.steps=20", "evaluation.every=10", "evaluation.interim_episodes=1"]
    one = tmp_path / "one"
    assert main(small_run(hopper_minari, data_dir, one, *settings)) == 0  # batches of 8 trajectories
    capsys.readouterr()
    two = tmp_path / "two"
    if algorithm == "bc":  # stopped at 10 and resumed, on both ranks (BC's rate is constant: the same steps)
        first = torchrun(
            [*small_run(hopper_minari, data_dir, two, *settings, "learner.steps=10"), "learner.distributed=ddp"]
        )
        assert first.returncode == 0, first.stderr[-3000:]
    run = torchrun([*small_run(hopper_minari, data_dir, two, *settings), "learner.distributed=ddp"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["steps"] == 20  # rank 0 alone prints the summary
    single, parallel = (checkpoint.load(folder / "checkpoint.pt")["learner"] for folder in (one, two))
    for name, weights in single["policy"].items():
        torch.testing.assert_close(parallel["policy"][name], weights, rtol=1e-5, atol=1e-6)
    one_losses, two_losses = (
        [float(row.split(",")[1]) for row in (folder / "train.csv").read_text().splitlines()[1:]]
        for folder in (one, two)
    )
    assert len(two_losses) == 4 and two_losses == pytest.approx(one_losses, rel=1e-5)  # the global batch's loss
    assert main(["evaluate", f"checkpoint={two}", "episodes=1"]) == 0  # a torchrun run's checkpoint, in one process


def test_ddp_sft_on_the_tiny_lm_gives_one_processs_parameters(tmp_path, capsys):
    """Token-mean SFT split over 2 ranks: each share's NLL over the ranks' mean token count, so the averaged
    gradient is the global batch's (not the mean of per-share token means)."""
    settings = ["train", "env=arithmetic", "algorithm=sft", f"data_dir={tmp_path / 'data'}",
                "env.task.options.train_size=24", "env.task.options.test_size=4", "sampling.samples_per_prompt=2",
                "learner.steps=4", "evaluation.episodes=4", "evaluation.every=0", "log_every=1", "progress=false"]  # fmt: skip
    assert main([*settings, f"run_dir={tmp_path / 'one'}"]) == 0  # makes the completions the ranks then read
    capsys.readouterr()
    run = torchrun([*settings, f"run_dir={tmp_path / 'two'}", "learner.distributed=ddp"])
    assert run.returncode == 0, run.stderr[-3000:]
    one_losses, two_losses = (
        [float(row.split(",")[1]) for row in (tmp_path / name / "train.csv").read_text().splitlines()[1:]]
        for name in ("one", "two")
    )
    assert len(two_losses) == 4 and two_losses == pytest.approx(one_losses, rel=1e-6)
    single, parallel = (checkpoint.load(tmp_path / name / "checkpoint.pt")["learner"] for name in ("one", "two"))
    for name, weights in single["policy"].items():
        torch.testing.assert_close(parallel["policy"][name], weights, rtol=1e-4, atol=1e-6)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_nodes_of_one_process_meet_through_the_c10d_rendezvous(hopper_minari, data_dir, tmp_path, capsys):
    """The README's multi-node command, both "nodes" on this machine: the same parameters as one process."""
    settings = ["algorithm=bc", "learner.steps=10", "evaluation.every=0"]
    one = tmp_path / "one"
    assert main(small_run(hopper_minari, data_dir, one, *settings)) == 0
    capsys.readouterr()
    endpoint = f"127.0.0.1:{free_port()}"
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY)}
    argv = [*small_run(hopper_minari, data_dir, tmp_path / "two", *settings), "learner.distributed=ddp"]
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes=2",
                f"--node-rank={node}",
                "--nproc-per-node=1",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint={endpoint}",
                "--rdzv-id=rlsft-test",
                "-m",
                "rlsft.cli",
                *argv,
            ],
            env=environment,
            cwd=REPOSITORY,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for node in (0, 1)
    ]
    outputs = [node.communicate(timeout=900) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    single, parallel = (
        checkpoint.load(folder / "checkpoint.pt")["learner"]["policy"] for folder in (one, tmp_path / "two")
    )
    for name, weights in single.items():
        torch.testing.assert_close(parallel[name], weights, rtol=1e-5, atol=1e-6)


def test_a_killed_ddp_run_resumes_at_its_checkpoint_and_ends_as_an_uninterrupted_one(hopper_minari, data_dir, tmp_path):
    settings = ["algorithm=bc", "learner.steps=400", "checkpoint_every=20", "log_every=20", "evaluation.every=0"]
    straight = tmp_path / "straight"  # uninterrupted DDP (400 steps from one process: 9e-5 apart, float drift)
    assert (
        torchrun([*small_run(hopper_minari, data_dir, straight, *settings), "learner.distributed=ddp"]).returncode == 0
    )
    two = tmp_path / "two"
    argv = [*small_run(hopper_minari, data_dir, two, *settings), "learner.distributed=ddp"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "rlsft.cli",
               *argv]  # fmt: skip
    run = subprocess.Popen(command, env=environment, cwd=REPOSITORY, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 600
    while not (two / "checkpoint.pt").exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # torchrun and both ranks, mid-run
    run.wait()
    killed_at = checkpoint.load(two / "checkpoint.pt")["learner"]["step"]
    assert 0 < killed_at < 400, "the run was to be killed between its first checkpoint and its end"
    resumed = torchrun(argv)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    uninterrupted, resumed_state = (checkpoint.load(folder / "checkpoint.pt")["learner"] for folder in (straight, two))
    assert resumed_state["step"] == 400
    for name, weights in uninterrupted["policy"].items():
        assert torch.equal(resumed_state["policy"][name], weights), name  # bit-exact
    steps = [int(row.split(",")[0]) for row in (two / "train.csv").read_text().splitlines()[1:]]
    assert steps == list(range(20, 401, 20))  # no row lost or repeated across the kill


def test_ddp_outside_torchrun_and_beyond_control_datasets_is_one_sentence(hopper_minari, data_dir, tmp_path, capsys):
    assert main(small_run(hopper_minari, data_dir, tmp_path / "run", "learner.distributed=ddp")) == 2
    assert "learner.distributed=ddp needs 2 or more processes; launch the run with `torchrun" in capsys.readouterr().err
    run = torchrun(
        ["train", "algorithm=ppo", f"run_dir={tmp_path / 'ppo'}", "learner.distributed=ddp", "progress=false"]
    )
    assert run.returncode != 0 and "trains algorithms on datasets so far, not ppo" in run.stderr
