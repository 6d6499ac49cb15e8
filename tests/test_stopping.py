"""A run sent SIGTERM (a scheduler's time limit or preemption, `kill`, `docker stop`) checkpoints the step it is
on and stops with one sentence; run again with the same command, it ends as the uninterrupted run ends."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import small_run

from rlsft import checkpoint
from rlsft.cli import compose_config, main

REPOSITORY = Path(__file__).parents[1]


def started(argv: list[str]) -> subprocess.Popen:
    """`python -m rlsft.cli <argv>` running, one thread, the leader of its own process group."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY)}
    command = [sys.executable, "-m", "rlsft.cli", *argv]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    return subprocess.Popen(command, env=environment, cwd=REPOSITORY, start_new_session=True,
                            preexec_fn=as_a_shell_starts_it, **pipes)  # fmt: skip


def as_a_shell_starts_it() -> None:
    """SIGINT and SIGTERM at their defaults in the child, as an interactive shell leaves them. A child inherits an
    ignored signal, and a shell without job control starts a background command with SIGINT ignored: pytest
    started so (`(nohup bash -c "python -m pytest" &)` in a script) ignores SIGINT, and without this so did the
    Ctrl-C test's run, which went on to its end (status 0; reproduced, and passing with this)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def logged_steps(run_dir: Path) -> list[int]:
    path = run_dir / "train.csv"
    return [int(row["step"]) for row in csv.DictReader(path.open())] if path.exists() else []


def wait_for_rows(run: subprocess.Popen, run_dir: Path, rows: int) -> None:
    deadline = time.monotonic() + 300
    while len(logged_steps(run_dir)) < rows and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_run_sent_sigterm_checkpoints_the_step_it_is_on_and_goes_on_to_the_uninterrupted_runs_end(
    hopper_minari, data_dir, tmp_path
):
    def run_in(folder: Path) -> list[str]:  # no checkpoint but the last step's: the stop's is the only other
        return small_run(hopper_minari, data_dir, folder, "algorithm=bc", "learner.steps=800",
                         "checkpoint_every=100000", "log_every=1", "evaluation.every=0")  # fmt: skip

    stopped = tmp_path / "stopped"
    run = started(run_in(stopped))
    wait_for_rows(run, stopped, 10)
    run.send_signal(signal.SIGTERM)
    _, error = run.communicate(timeout=300)
    assert run.returncode == 143, error[-3000:]
    step = checkpoint.load(stopped / "checkpoint.pt")["learner"]["step"]
    assert 10 <= step < 800, "the run was to be stopped mid-run"
    sentence = f"stopped at step {step} of 800 on SIGTERM; {stopped / 'checkpoint.pt'} holds that step: run the same"
    assert error.strip().splitlines()[-1].endswith(f"{sentence} command to go on.") and "Traceback" not in error
    assert logged_steps(stopped) == list(range(1, step + 1))
    assert not (stopped / "summary.json").exists()

    assert main(run_in(stopped)) == 0
    straight = tmp_path / "straight"
    assert main(run_in(straight)) == 0
    resumed, uninterrupted = (checkpoint.load(folder / "checkpoint.pt")["learner"] for folder in (stopped, straight))
    for name, weights in uninterrupted["policy"].items():
        assert torch.equal(resumed["policy"][name], weights), name  # bit-exact
    losses = [[row["loss"] for row in csv.DictReader((folder / "train.csv").open())] for folder in (stopped, straight)]
    assert losses[0] == losses[1] and len(losses[0]) == 800


def test_a_sweep_sent_sigterm_stops_its_job_starts_no_other_and_goes_on_when_run_again(
    hopper_minari, data_dir, tmp_path, capsys
):
    runs = tmp_path / "runs"
    argv = ["train", "-m", f"data={hopper_minari}", f"data_dir={data_dir}", "algorithm=bc", "seed=0,1",
            "learner.steps=800", "learner.batch_size=8", "log_every=1", "evaluation.every=0", "evaluation.episodes=1",
            "progress=false", f"run_dir={runs}/bc-seed${{seed}}", f"hydra.sweep.dir={tmp_path}/sweep"]  # fmt: skip
    run = started(argv)
    wait_for_rows(run, runs / "bc-seed0", 10)
    run.send_signal(signal.SIGTERM)
    output, error = run.communicate(timeout=300)
    assert run.returncode == 143, error[-3000:]
    assert error.strip().splitlines()[-1] == (
        "rlsft: The sweep stopped on SIGTERM; run the same command to go on (finished jobs give their summaries,"
        " stopped ones resume from their checkpoints)."
    )
    stopped, not_started = json.loads(output)["jobs"]
    assert stopped["stopped"] and "stopped at step" in stopped["error"] and not_started["stopped"]
    assert not (runs / "bc-seed1").exists()
    step = checkpoint.load(runs / "bc-seed0" / "checkpoint.pt")["learner"]["step"]
    assert main(argv) == 0
    assert [job["summary"]["steps"] for job in json.loads(capsys.readouterr().out)["jobs"]] == [800, 800]
    assert 10 <= step < 800 and logged_steps(runs / "bc-seed0") == list(range(1, 801))


def test_a_joblib_sweep_sent_sigterm_passes_it_on_so_its_workers_stop_their_runs_and_it_reports(
    hopper_minari, data_dir, tmp_path, capsys
):
    """The signal alone ended the sweep's process at once, without its report, and left its joblib workers
    training (their runs, unseen, went on to the end)."""
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    runs = tmp_path / "runs"
    argv = ["train", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"data={hopper_minari}",
            f"data_dir={data_dir}", "algorithm=bc", "seed=0,1,2", "learner.steps=800", "learner.batch_size=8",
            "log_every=1", "evaluation.every=0", "evaluation.episodes=1", "progress=false",
            f"run_dir={runs}/bc-seed${{seed}}", f"hydra.sweep.dir={tmp_path}/sweep"]  # fmt: skip
    run = started(argv)
    try:
        for seed in (0, 1):
            wait_for_rows(run, runs / f"bc-seed{seed}", 10)
        run.send_signal(signal.SIGTERM)
        output, error = run.communicate(timeout=120)  # its workers hold its pipes: they too have ended
    finally:  # where they have not, they are not left behind (the sweep leads its own process group)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode == 143, error[-3000:]
    assert error.strip().splitlines()[-1].startswith("rlsft: The sweep stopped on SIGTERM;")
    first, second, third = json.loads(output)["jobs"]
    assert first["stopped"] and second["stopped"] and "stopped at step" in first["error"] + second["error"]
    assert third["stopped"] and "not started" in third["error"] and not (runs / "bc-seed2").exists()
    steps = [checkpoint.load(runs / f"bc-seed{seed}" / "checkpoint.pt")["learner"]["step"] for seed in (0, 1)]
    assert all(10 <= step < 800 for step in steps)
    assert [logged_steps(runs / f"bc-seed{seed}") for seed in (0, 1)] == [list(range(1, step + 1)) for step in steps]

    assert main(argv) == 0
    assert [job["summary"]["steps"] for job in json.loads(capsys.readouterr().out)["jobs"]] == [800, 800, 800]
    assert logged_steps(runs / "bc-seed0") == list(range(1, 801))


def test_a_bench_sent_sigterm_stops_in_its_run_and_starts_no_other(tmp_path):
    train = ["learner.steps=800", "learner.batch_size=8", "log_every=1", "evaluation.every=0", "evaluation.episodes=1"]
    others = [f"~methods.{method}" for method in compose_config("bench/control", []).methods if method != "bc"]
    runs = tmp_path / "runs"
    settings = f"sizes.quick.train=[{','.join(repr(setting) for setting in train)}]"
    run = started(["bench", "control", "size=quick", "tasks=[hopper-medium-replay]", "sizes.quick.seeds=[0,1]",
                   settings, f"root={runs}", f"data_dir={tmp_path / 'data'}", f"results={tmp_path / 'report'}",
                   *others])  # fmt: skip
    seed0 = runs / "hopper-medium-replay" / "bc" / "seed0"
    wait_for_rows(run, seed0, 10)
    run.send_signal(signal.SIGTERM)
    _, error = run.communicate(timeout=300)
    assert run.returncode == 143, error[-3000:]
    assert error.strip().splitlines()[-1] == (
        "rlsft: The bench stopped on SIGTERM while training bc on hopper-medium-replay; run the same command to go on."
    )
    assert 10 <= checkpoint.load(seed0 / "checkpoint.pt")["learner"]["step"] < 800
    assert not (seed0.parent / "seed1").exists() and not (tmp_path / "report").exists()


def test_a_ppo_run_whose_rollout_workers_are_signalled_too_still_stops_at_its_step(tmp_path):
    """A scheduler (SLURM) sends SIGTERM to every process of a job: the rollout workers that ended at once broke
    the step, and the run ended with a connection error instead of its checkpoint."""
    run_dir = tmp_path / "ppo"
    argv = ["train", "algorithm=ppo", "env=hopper", f"run_dir={run_dir}", "algorithm.rollout.workers=2",
            "algorithm.rollout.num_envs=2", "algorithm.rollout.frames_per_env=64", "algorithm.rollout.epochs=1",
            "algorithm.rollout.minibatches=2", "algorithm.rollout.frames=5120", "env.max_episode_steps=50",
            "log_every=1", "checkpoint_every=100000", "evaluation.every=0", "evaluation.episodes=1",
            "progress=false"]  # fmt: skip
    run = started(argv)
    wait_for_rows(run, run_dir, 4)
    os.killpg(run.pid, signal.SIGTERM)  # the run and its two workers
    _, error = run.communicate(timeout=300)
    assert run.returncode == 143, error[-3000:]
    step = checkpoint.load(run_dir / "checkpoint.pt")["learner"]["step"]
    assert f"stopped at step {step} of 80 on SIGTERM" in error.strip().splitlines()[-1]
    assert 4 <= step < 80 and logged_steps(run_dir) == list(range(1, step + 1))
    assert main(argv) == 0 and logged_steps(run_dir) == list(range(1, 81))


def test_ctrl_c_ends_a_run_at_once_in_one_sentence_and_its_last_checkpoint_resumes_it(
    hopper_minari, data_dir, tmp_path
):
    run_dir = tmp_path / "run"
    argv = small_run(hopper_minari, data_dir, run_dir, "algorithm=bc", "learner.steps=400", "checkpoint_every=20",
                     "log_every=1", "evaluation.every=0")  # fmt: skip
    run = started(argv)
    wait_for_rows(run, run_dir, 25)
    assert run.poll() is None, f"the run ended before Ctrl-C could be sent (status {run.returncode})"
    run.send_signal(signal.SIGINT)
    _, error = run.communicate(timeout=300)
    assert run.returncode == 130 and "Traceback" not in error, error[-3000:]
    assert error.strip().splitlines()[-1].startswith("rlsft: Interrupted (Ctrl-C); the same command goes on")
    step = checkpoint.load(run_dir / "checkpoint.pt")["learner"]["step"]
    assert step % 20 == 0 and 20 <= step < 400  # the last periodic checkpoint
    assert main(argv) == 0 and logged_steps(run_dir) == list(range(1, 401))
