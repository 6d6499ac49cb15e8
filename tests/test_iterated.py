"""Iterated SFT (algorithm.rounds.every): fresh curated samples of the current policy every N steps, on text."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
from conftest import small_run

from rlsft import checkpoint
from rlsft.cli import main


def iterated(tmp_path: Path, run_dir: Path, algorithm: str, *overrides: str) -> list[str]:
    return ["train", "env=arithmetic", f"algorithm={algorithm}", f"data_dir={tmp_path / 'data'}", f"run_dir={run_dir}",
            "env.task.options.train_size=12", "env.task.options.test_size=4", "sampling.samples_per_prompt=2",
            "algorithm.rounds.every=3", "evaluation.episodes=4", "evaluation.every=0", "log_every=1",
            "progress=false", "learner.schedule=constant", "learner.warmup_steps=0", *overrides]  # fmt: skip


def rows(run_dir: Path) -> list[dict]:
    with (run_dir / "train.csv").open() as file:
        return list(csv.DictReader(file))


def test_each_round_draws_from_the_current_policy_which_is_that_rounds_pi_ref(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(iterated(tmp_path, run_dir, "iw_sft", "learner.steps=9")) == 0
    train = rows(run_dir)
    assert [int(float(row["round"])) for row in train] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    for row in train:  # q = the policy (text's iw-SFT): w = 1 exactly where the policy is the round's sampler
        first_of_round = int(row["step"]) % 3 == 1
        assert (abs(float(row["weight_mean"]) - 1.0) < 1e-6) == first_of_round, row["step"]
    capsys.readouterr()


def test_a_run_stopped_mid_round_resumes_as_one_that_was_not(tmp_path, capsys):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert main(iterated(tmp_path, straight, "sft", "learner.steps=8")) == 0
    assert main(iterated(tmp_path, stopped, "sft", "learner.steps=5")) == 0  # step 5: two steps into round 1
    assert main(iterated(tmp_path, stopped, "sft", "learner.steps=8")) == 0
    assert [row["loss"] for row in rows(stopped)] == [row["loss"] for row in rows(straight)]
    policies = [checkpoint.load(folder / "checkpoint.pt")["learner"]["policy"] for folder in (straight, stopped)]
    for name, weights in policies[0].items():
        assert torch.equal(policies[1][name], weights), name
    capsys.readouterr()


def test_control_rounds_are_episodes_of_the_current_policy_curated_by_return(hopper_minari, data_dir, tmp_path, capsys):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    settings = ["algorithm=iw_sft", "algorithm.rounds.every=4", "algorithm.rounds.steps=300", "log_every=1",
                "evaluation.every=0", "learner.schedule=constant", "learner.warmup_steps=0"]  # fmt: skip
    assert main(small_run(hopper_minari, data_dir, straight, *settings, "learner.steps=10")) == 0
    train = rows(straight)
    assert [int(float(row["round"])) for row in train] == [0] * 4 + [1] * 4 + [2] * 2
    # a round keeps the top 10% of the policy's episodes by return (at least one): far fewer than the dataset's
    assert all(1 <= float(row["round_trajectories"]) < float(train[0]["round_trajectories"]) for row in train[4:])
    assert main(small_run(hopper_minari, data_dir, stopped, *settings, "learner.steps=6")) == 0  # mid-round 1
    assert main(small_run(hopper_minari, data_dir, stopped, *settings, "learner.steps=10")) == 0
    assert [row["loss"] for row in rows(stopped)] == [row["loss"] for row in train]
    capsys.readouterr()


def test_rounds_for_an_algorithm_of_fresh_batches_are_one_sentence(tmp_path, capsys):
    argv = ["train", "env=arithmetic", "algorithm=grpo", f"run_dir={tmp_path / 'run'}", "algorithm.rounds.every=3"]
    assert main(argv) == 2
    assert "iterates the SFT family's data, and grpo draws fresh batches anyway" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
