"""Data-parallel training through torchrun on CPU (gloo): 2 real processes against one with the same global batch."""

from __future__ import annotations

import json
import math
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
from tensordict import TensorDict

from rlsft import checkpoint, distributed
from rlsft.algorithms.bc import BC
from rlsft.cli import main
from rlsft.learner import Learner, LearnerConfig
from rlsft.policies import GaussianMLP

REPOSITORY = Path(__file__).parents[1]


def rank_environment() -> dict[str, str]:
    """One thread a process; a rank that aborts (SIGABRT, SIGSEGV) prints its Python threads' stacks to stderr."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY), "PYTHONFAULTHANDLER": "1"}


def torchrun_command(argv: list[str], processes: int = 2) -> list[str]:
    """`torchrun --standalone --nproc-per-node N -m rlsft.cli <argv>`."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
            "-m", "rlsft.cli", *argv]  # fmt: skip


def torchrun(argv: list[str], processes: int = 2) -> subprocess.CompletedProcess:
    """torchrun_command(argv, processes) run to its end, one thread a process."""
    command = torchrun_command(argv, processes)
    return subprocess.run(command, capture_output=True, text=True, env=rank_environment(), cwd=REPOSITORY, timeout=900)


@pytest.mark.parametrize("algorithm", ["bc", "iw_sft"])  # iw-SFT: self-normalised weights over the global batch
def test_ddp_on_two_processes_gives_one_processs_parameters(algorithm, hopper_minari, data_dir, tmp_path, capsys):
    # pi_ref of its own (19 steps, no other test's): trained by rank 0 alone while rank 1 waits, then read by both
    settings = [f"algorithm={algorithm}", "learner.steps=20", "evaluation.every=10", "evaluation.interim_episodes=1",
                "reference.learner.steps=19"]  # fmt: skip
    two = tmp_path / "two"
    if algorithm == "bc":  # stopped at 10 and resumed, on both ranks (BC's rate is constant: the same steps)
        first = torchrun(
            [*small_run(hopper_minari, data_dir, two, *settings, "learner.steps=10"), "learner.distributed=ddp"]
        )
        assert first.returncode == 0, first.stderr[-3000:]
    run = torchrun([*small_run(hopper_minari, data_dir, two, *settings), "learner.distributed=ddp"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["steps"] == 20  # rank 0 alone prints the summary
    one = tmp_path / "one"
    assert main(small_run(hopper_minari, data_dir, one, *settings)) == 0  # batches of 8 trajectories
    capsys.readouterr()
    single, parallel = (checkpoint.load(folder / "checkpoint.pt")["learner"] for folder in (one, two))
    for name, weights in single["policy"].items():
        torch.testing.assert_close(parallel["policy"][name], weights, rtol=1e-5, atol=1e-6)
    # Every metric rank 0 logs is the global batch's (iw-SFT's weight statistics too), not rank 0's share's.
    single_rows, parallel_rows = (train_columns(folder) for folder in (one, two))
    assert len(parallel_rows["loss"]) == 4 and parallel_rows.keys() == single_rows.keys()
    for name, values in single_rows.items():
        assert parallel_rows[name] == pytest.approx(values, rel=1e-5, abs=1e-7), name
    assert main(["evaluate", f"checkpoint={two}", "episodes=1"]) == 0  # a torchrun run's checkpoint, in one process


def train_columns(run_dir: Path) -> dict[str, list[float]]:
    """train.csv's columns by name, without the clock's."""
    header, *rows = (line.split(",") for line in (run_dir / "train.csv").read_text().splitlines())
    return {name: [float(row[i]) for row in rows] for i, name in enumerate(header) if name not in ("step", "seconds")}


def losses(run_dir: Path) -> list[float]:
    return train_columns(run_dir)["loss"]


def evaluations(run_dir: Path) -> list[list[str]]:
    """The eval rows without their wall-clock seconds."""
    return [row.split(",")[:-1] for row in (run_dir / "eval.csv").read_text().splitlines()[1:]]


def text_run(data_dir: Path, algorithm: str, *overrides: str) -> list[str]:
    return ["train", "env=arithmetic", f"algorithm={algorithm}", f"data_dir={data_dir}", "env.task.options.test_size=5",
            "evaluation.episodes=5", "evaluation.every=4", "evaluation.interim_episodes=5", "log_every=1",
            "progress=false", *overrides]  # fmt: skip


@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_sft_on_the_tiny_lm_over_two_processes_gives_one_processs_run_and_resumes_in_one(mode, tmp_path, capsys):
    """Token-mean SFT split over 2 ranks: each share's NLL over the ranks' mean token count, so the averaged
    gradient is the global batch's (not the mean of per-share token means). FSDP2 shards the model, evaluates
    the held-out prompts split over the ranks (5: 3 and 2) and writes full state dicts, which one process
    resumes from (constant rate: the steps after the switch are those of a run that never switched)."""
    settings = text_run(tmp_path / "data", "sft", "env.task.options.train_size=24", "sampling.samples_per_prompt=2",
                        "learner.schedule=constant", "learner.warmup_steps=0", "checkpoint_every=4")  # fmt: skip
    assert main([*settings, "learner.steps=8", f"run_dir={tmp_path / 'one'}"]) == 0  # also makes the completions
    capsys.readouterr()
    two = tmp_path / "two"
    run = torchrun([*settings, "learner.steps=4", f"run_dir={two}", f"learner.distributed={mode}"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert losses(two) == pytest.approx(losses(tmp_path / "one")[:4], rel=1e-6)
    assert evaluations(two) == evaluations(tmp_path / "one")[:2]  # steps 0 and 4, 5 prompts each
    assert main([*settings, "learner.steps=8", f"run_dir={two}"]) == 0  # on in one process
    assert losses(two) == pytest.approx(losses(tmp_path / "one"), rel=1e-5)
    single, parallel = (checkpoint.load(tmp_path / name / "checkpoint.pt")["learner"] for name in ("one", "two"))
    assert parallel["policy"].keys() == single["policy"].keys()
    for name, weights in single["policy"].items():
        torch.testing.assert_close(parallel["policy"][name], weights, rtol=1e-4, atol=1e-6)


def test_fsdp_grpo_gives_ddp_grpos_run(tmp_path, capsys):
    """GRPO's completions are each rank's own draws, so FSDP is held against DDP with the same ranks' streams
    (and DDP against one process through the SFT test above): the same losses, KL to pi_ref included."""
    settings = text_run(tmp_path / "data", "grpo", "env.task.options.train_size=16", "learner.steps=6",
                        "algorithm.rollout.prompts_per_batch=4", "algorithm.rollout.samples_per_prompt=4",
                        "algorithm.options.kl_coef=0.05")  # fmt: skip
    for mode in ("ddp", "fsdp"):
        run = torchrun([*settings, f"run_dir={tmp_path / mode}", f"learner.distributed={mode}"])
        assert run.returncode == 0, run.stderr[-3000:]
    assert losses(tmp_path / "fsdp") == pytest.approx(losses(tmp_path / "ddp"), rel=1e-5, abs=1e-9)
    rows = [(tmp_path / mode / "train.csv").read_text().splitlines() for mode in ("ddp", "fsdp")]
    completions = [row.split(",")[rows[0][0].split(",").index("completions")] for row in rows[0][1:]]
    assert completions == [str(16.0 * step) for step in range(1, 7)]  # 2 ranks x 2 prompts x 4, a step each
    assert main(["evaluate", f"checkpoint={tmp_path / 'fsdp'}", "episodes=5"]) == 0  # full state, one process
    assert 0 <= json.loads(capsys.readouterr().out)["accuracy"] <= 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def poisoned_ddp_step(rank: int, port: int, results: dict) -> None:
    """One rank of a 2-process DDP learner (gloo) whose second step has a NaN in rank 1's batch alone."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = LearnerConfig(steps=10, batch_size=8, lr=1e-3, warmup_steps=0, device="cpu", distributed="ddp")
    learner = Learner(GaussianMLP(3, 2), BC(), config)
    generator = torch.Generator().manual_seed(rank)  # each rank its own share of the batch
    batch = TensorDict(
        {"observation": torch.randn(4, 5, 3, generator=generator), "action": torch.rand(4, 5, 2, generator=generator),
         "mask": torch.ones(4, 5, dtype=torch.bool)},
        batch_size=[4],
    )  # fmt: skip
    first = learner.train_step(batch)
    before = {name: tensor.clone() for name, tensor in learner.policy.state_dict().items()}
    poisoned = batch.clone()
    if rank == 1:
        poisoned["observation"][0, 0, 0] = float("nan")
    second = learner.train_step(poisoned)
    unchanged = all(torch.equal(before[name], tensor) for name, tensor in learner.policy.state_dict().items())
    results[rank] = (float(first["loss"]), float(second["nonfinite_steps"]), unchanged)
    distributed.stop()


def test_a_step_nonfinite_on_one_rank_is_left_out_on_every_rank_and_losses_are_the_global_mean() -> None:
    """Under DDP the loss rides in the gradients' all-reduce: a NaN in one rank's share makes every rank leave
    the step out (no rank drifts), and the logged loss is the same mean of the shares on both ranks."""
    with torch.multiprocessing.Manager() as manager:
        results = manager.dict()
        torch.multiprocessing.spawn(poisoned_ddp_step, args=(free_port(), results), nprocs=2)
        results = dict(results)
    assert results[0][0] == results[1][0] and math.isfinite(results[0][0])
    assert results[0][1:] == results[1][1:] == (1.0, True)


def reduced_metrics(rank: int, port: int, results: dict) -> None:
    """One rank of 2 (gloo) reducing metrics that differ between the ranks."""
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    distributed.start(torch.device("cpu"))
    value = torch.tensor(float(rank))
    reduced = distributed.metrics_over_ranks({"nll": value, "weight_max": value, "weight_min": value, "lr": 0.1})
    results[rank] = {name: float(metric) for name, metric in reduced.items()}
    distributed.stop()


def test_a_ranks_metrics_are_logged_over_every_ranks_share() -> None:
    with torch.multiprocessing.Manager() as manager:
        results = manager.dict()
        torch.multiprocessing.spawn(reduced_metrics, args=(free_port(), results), nprocs=2)
        results = dict(results)
    assert results[0] == results[1] == {"nll": 0.5, "weight_max": 1.0, "weight_min": 0.0, "lr": 0.1}


def moments_of_shares(rank: int, port: int, results: dict) -> None:
    """One rank of 2 (gloo) taking the mean and std of shares of different sizes, far from centred."""
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    distributed.start(torch.device("cpu"))
    values = torch.randn(300, generator=torch.Generator().manual_seed(0)) * 3 + 1000  # both ranks draw all
    share = values[:100] if rank == 0 else values[100:]
    results[rank] = tuple(float(moment) for moment in distributed.mean_std_over_ranks(share))
    distributed.stop()


def test_the_mean_and_std_over_ranks_are_those_of_every_ranks_values_together() -> None:
    """One all-reduce of count, sum and sum of squares (float64) gives torch's mean and unbiased std of the
    whole batch, with a mean 300 times its std; per-share moments averaged would not (unequal shares)."""
    with torch.multiprocessing.Manager() as manager:
        results = manager.dict()
        torch.multiprocessing.spawn(moments_of_shares, args=(free_port(), results), nprocs=2)
        results = dict(results)
    values = torch.randn(300, generator=torch.Generator().manual_seed(0)) * 3 + 1000
    assert results[0] == results[1]
    assert results[0] == pytest.approx((float(values.mean()), float(values.std())), rel=1e-6)


def test_two_nodes_of_one_process_meet_through_the_c10d_rendezvous(hopper_minari, data_dir, tmp_path, capsys):
    """The README's multi-node command, both "nodes" on this machine: the same parameters as one process."""
    settings = ["algorithm=bc", "learner.steps=10", "evaluation.every=0"]
    one = tmp_path / "one"
    assert main(small_run(hopper_minari, data_dir, one, *settings)) == 0
    capsys.readouterr()
    endpoint = f"127.0.0.1:{free_port()}"
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
            env=rank_environment(),
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


def test_the_tasks_of_a_submitit_job_train_as_the_ranks_of_one_run(hopper_minari, data_dir, tmp_path, capsys):
    """Two tasks of a job that hydra's submitit launcher (tasks_per_node=2) starts on SLURM, with the variables
    SLURM and submitit give them and no torchrun, on this machine: submitit's helper makes them ranks 0 and 1."""
    settings = ["algorithm=bc", "learner.steps=10", "evaluation.every=0"]
    one = tmp_path / "one"
    assert main(small_run(hopper_minari, data_dir, one, *settings)) == 0
    capsys.readouterr()
    argv = [*small_run(hopper_minari, data_dir, tmp_path / "two", *settings), "learner.distributed=ddp"]
    slurm = {"SUBMITIT_EXECUTOR": "slurm", "SLURM_JOB_ID": "4242", "SLURM_NTASKS": "2", "SLURM_JOB_NUM_NODES": "1",
             "SLURM_NODEID": "0", "SLURM_JOB_NODELIST": "127.0.0.1", "MASTER_PORT": str(free_port())}  # fmt: skip
    tasks = [
        subprocess.Popen(
            [sys.executable, "-m", "rlsft.cli", *argv],
            env={**rank_environment(), **slurm, "SLURM_PROCID": str(task), "SLURM_LOCALID": str(task)},
            cwd=REPOSITORY,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for task in (0, 1)
    ]
    outputs = [task.communicate(timeout=900) for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert json.loads(outputs[0][0])["steps"] == 10 and not outputs[1][0].strip()  # rank 0 alone reports
    single, parallel = (
        checkpoint.load(folder / "checkpoint.pt")["learner"]["policy"] for folder in (one, tmp_path / "two")
    )
    for name, weights in single.items():
        torch.testing.assert_close(parallel[name], weights, rtol=1e-5, atol=1e-6)


# Runs of each batch source: every rank the same global batch (bc), each rank its own envs (ppo), its own env and
# replay buffer (sac), its own prompts (grpo), or both kinds at once (mix: GRPO + iw-SFT).
KILLED_RUNS = {
    "bc": ["algorithm=bc", "learner.steps=400", "checkpoint_every=20", "log_every=20"],
    "ppo": ["algorithm=ppo", "env=hopper", "algorithm.rollout.frames=4096", "algorithm.rollout.num_envs=2",
            "algorithm.rollout.frames_per_env=64", "algorithm.rollout.epochs=1", "algorithm.rollout.minibatches=2",
            "env.max_episode_steps=50", "checkpoint_every=4", "log_every=4"],
    "grpo": ["algorithm=grpo", "env=arithmetic", "env.task.options.train_size=16", "env.task.options.test_size=4",
             "algorithm.rollout.prompts_per_batch=4", "algorithm.rollout.samples_per_prompt=2", "learner.steps=24",
             "checkpoint_every=4", "log_every=4"],
    "mix": ["algorithm=mix", "env=arithmetic", "env.task.options.train_size=16", "env.task.options.test_size=4",
            "+algorithm.part.grpo.rollout.prompts_per_batch=4", "+algorithm.part.grpo.rollout.samples_per_prompt=2",
            "sampling.samples_per_prompt=2", "learner.steps=24", "checkpoint_every=4", "log_every=4"],
    "sac": ["algorithm=sac", "env=hopper", "algorithm.replay.learning_starts=50", "algorithm.replay.buffer_size=1000",
            "algorithm.replay.batch_size=16", "policy.hidden_sizes=[16]", "algorithm.options.critic_hidden_sizes=[16]",
            "learner.compile=false", "learner.steps=300", "env.max_episode_steps=50", "checkpoint_every=20",
            "log_every=20"],
}  # fmt: skip


@pytest.mark.parametrize("algorithm", sorted(KILLED_RUNS))
def test_a_killed_ddp_run_resumes_at_its_checkpoint_and_ends_as_an_uninterrupted_one(
    algorithm, hopper_minari, data_dir, tmp_path, capsys
):
    def run_in(folder: Path) -> list[str]:
        settings = [*KILLED_RUNS[algorithm], "evaluation.every=0", "evaluation.episodes=2", "learner.distributed=ddp"]
        if algorithm == "bc":
            return small_run(hopper_minari, data_dir, folder, *settings)
        return ["train", f"run_dir={folder}", f"data_dir={data_dir}", "progress=false", *settings]

    straight = tmp_path / "straight"  # uninterrupted DDP (400 BC steps from one process: 9e-5 apart, float drift)
    assert torchrun(run_in(straight)).returncode == 0
    two = tmp_path / "two"
    run = subprocess.Popen(torchrun_command(run_in(two)), env=rank_environment(), cwd=REPOSITORY,
                           start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 600
    while not (two / "checkpoint.pt").exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)  # torchrun and both ranks, mid-run
    run.wait()
    killed_at = checkpoint.load(two / "checkpoint.pt")["learner"]["step"]
    total = checkpoint.load(straight / "checkpoint.pt")["learner"]["step"]
    assert 0 < killed_at < total, "the run was to be killed between its first checkpoint and its end"
    resumed = torchrun(run_in(two))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    uninterrupted, resumed_state = (checkpoint.load(folder / "checkpoint.pt") for folder in (straight, two))
    assert resumed_state["learner"]["step"] == total
    for name, weights in uninterrupted["learner"]["policy"].items():
        assert torch.equal(resumed_state["learner"]["policy"][name], weights), name  # bit-exact
    every = int(KILLED_RUNS[algorithm][-1].split("=")[1])
    steps = [int(row.split(",")[0]) for row in (two / "train.csv").read_text().splitlines()[1:]]
    assert steps == list(range(every, total + 1, every))  # no row lost or repeated across the kill
    if algorithm != "bc":  # each rank draws its own envs' steps or completions: with its own RNG
        ranks = resumed_state["ranks"]
        assert len(ranks) == 2 and not torch.equal(ranks[0]["rng"]["torch"], ranks[1]["rng"]["torch"])
        assert main(["train", *run_in(two)[1:-1], "learner.distributed=none"]) == 2  # not in one process
        assert "was written by 2 process(es), each drawing its own batches" in capsys.readouterr().err


def test_a_ddp_run_sent_sigterm_stops_every_rank_at_one_step_and_goes_on_to_the_uninterrupted_runs_end(
    hopper_minari, data_dir, tmp_path
):
    def run_in(folder: Path) -> list[str]:  # no checkpoint but the last step's: the stop's is the only other
        return small_run(hopper_minari, data_dir, folder, "algorithm=bc", "learner.steps=600", "log_every=5",
                         "checkpoint_every=100000", "evaluation.every=0", "learner.distributed=ddp")  # fmt: skip

    straight = tmp_path / "straight"
    assert torchrun(run_in(straight)).returncode == 0
    stopped = tmp_path / "stopped"
    run = subprocess.Popen(torchrun_command(run_in(stopped)), env=rank_environment(), cwd=REPOSITORY,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 300
    while not (stopped / "train.csv").exists() or len((stopped / "train.csv").read_text().splitlines()) < 3:
        assert run.poll() is None and time.monotonic() < deadline, "the run was to be stopped mid-run"
        time.sleep(0.02)
    run.send_signal(signal.SIGTERM)  # to torchrun, which passes it on to both ranks
    _, error = run.communicate(timeout=300)
    step = checkpoint.load(stopped / "checkpoint.pt")["learner"]["step"]
    assert 10 <= step < 600 and f"stopped at step {step} of 600 on SIGTERM" in error, error[-3000:]
    assert "[rank0]: Traceback" not in error and "[rank1]: Traceback" not in error
    steps = [int(row.split(",")[0]) for row in (stopped / "train.csv").read_text().splitlines()[1:]]
    assert steps == list(range(5, step + 1, 5))  # the ranks agree where they log
    resumed = torchrun(run_in(stopped))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    uninterrupted, resumed_state = (checkpoint.load(folder / "checkpoint.pt") for folder in (straight, stopped))
    for name, weights in uninterrupted["learner"]["policy"].items():
        assert torch.equal(resumed_state["learner"]["policy"][name], weights), name  # bit-exact


def test_ddp_outside_torchrun_and_shares_that_do_not_split_are_one_sentence(hopper_minari, data_dir, tmp_path, capsys):
    assert main(small_run(hopper_minari, data_dir, tmp_path / "run", "learner.distributed=ddp")) == 2
    assert "learner.distributed=ddp needs 2 or more processes; launch the run with `torchrun" in capsys.readouterr().err
    run = torchrun(["train", "algorithm=ppo", f"run_dir={tmp_path / 'ppo'}", "learner.distributed=ddp",
                    "algorithm.rollout.num_envs=3", "progress=false"])  # fmt: skip
    sentence = "rlsft: error: algorithm.rollout.num_envs=3 does not split evenly over 2 processes"
    said_once_a_rank(run, sentence)
    assert not (tmp_path / "ppo").exists()
    control = torchrun(
        [*small_run(hopper_minari, data_dir, tmp_path / "bc", "algorithm=bc", "learner.distributed=fsdp")]
    )
    said_once_a_rank(control, "learner.distributed=fsdp shards causal-LM policies, and gaussian_mlp is not")
    ema = torchrun(text_run(tmp_path / "data", "iw_sft", "env.task.options.train_size=8", "algorithm.options.q=ema",
                            f"run_dir={tmp_path / 'ema'}", "learner.distributed=fsdp"))  # fmt: skip
    said_once_a_rank(ema, "iw_sft keeps parameters of its own (iw-SFT's q=ema or copy")


def said_once_a_rank(run: subprocess.CompletedProcess, sentence: str) -> None:
    """A torchrun run that stopped at bad input: each rank that got as far says `sentence` once, none a traceback.
    Both ranks reach it, but the first to exit makes torchrun stop the other, so under load that one may be
    stopped before it says it (torchrun then reports its children's failure, exit code 1)."""
    assert run.returncode != 0 and run.stderr.count(sentence) in (1, 2), run.stderr[-3000:]
    assert "[rank0]: Traceback" not in run.stderr and "[rank1]: Traceback" not in run.stderr
