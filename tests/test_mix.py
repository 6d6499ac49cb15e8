"""algorithm=mix: a weighted sum of registered algorithms' losses, each part on its own batch source, both domains."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch
from conftest import small_run

from rlsft import checkpoint
from rlsft.cli import main

TEXT = ["env=arithmetic", "algorithm=mix", "env.task.options.train_size=12", "env.task.options.test_size=4",
        "sampling.samples_per_prompt=2", "evaluation.episodes=4", "evaluation.every=0", "log_every=1",
        "progress=false", "learner.schedule=constant", "learner.warmup_steps=0",
        "+algorithm.part.grpo.rollout.prompts_per_batch=2",
        "+algorithm.part.grpo.rollout.samples_per_prompt=4"]  # fmt: skip
# PPO on 2 x 64-step rollouts (8 minibatches each) beside iw-SFT on a dataset, 16 trajectories a step
CONTROL = ["env=hopper", "algorithm=mix", "algorithm.parts=[ppo,iw_sft]", "algorithm.weights=[1.0,0.5]",
           "algorithm.batch_sizes=[null,16]", "learner=ppo", "policy=actor_critic", "learner.schedule=constant",
           "+algorithm.part.ppo.rollout.num_envs=2", "+algorithm.part.ppo.rollout.frames_per_env=64",
           "+algorithm.part.ppo.rollout.minibatches=4", "+algorithm.part.ppo.rollout.epochs=2",
           "evaluation.every=0", "log_every=1"]  # fmt: skip


def rows(run_dir: Path) -> list[dict]:
    with (run_dir / "train.csv").open() as file:
        return list(csv.DictReader(file))


def assert_loss_is_the_weighted_sum(train: list[dict], weights: dict[str, float]) -> None:
    for row in train:
        parts = sum(weight * float(row[f"{part}/loss"]) for part, weight in weights.items())
        assert math.isclose(float(row["loss"]), parts, rel_tol=1e-5, abs_tol=1e-7), row["step"]


def assert_same_policy(first: Path, second: Path) -> None:
    policies = [checkpoint.load(folder / "checkpoint.pt")["learner"]["policy"] for folder in (first, second)]
    for name, weights in policies[0].items():
        assert torch.equal(policies[1][name], weights), name


def test_grpo_with_iw_sft_on_text_logs_each_part_and_resumes_exactly(tmp_path, capsys):
    def argv(run_dir: Path, steps: int) -> list[str]:
        return ["train", *TEXT, f"data_dir={tmp_path / 'data'}", f"run_dir={run_dir}", f"learner.steps={steps}"]

    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert main(argv(straight, 6)) == 0
    train = rows(straight)
    assert len(train) == 6
    assert_loss_is_the_weighted_sum(train, {"grpo": 1.0, "iw_sft": 0.1})  # mix.yaml's default parts and weights
    assert {"grpo/clip_fraction", "grpo/accuracy", "iw_sft/weight_ess", "iw_sft/nll"} <= set(train[0])
    assert [float(row["grpo/completions"]) for row in train] == [8.0 * step for step in range(1, 7)]
    assert main(argv(stopped, 3)) == 0
    assert set(checkpoint.load(stopped / "checkpoint.pt")["source"]) == {"grpo", "iw_sft"}  # every part's state
    assert main(argv(stopped, 6)) == 0
    assert [row["loss"] for row in rows(stopped)] == [row["loss"] for row in train]
    assert_same_policy(straight, stopped)
    capsys.readouterr()


def test_ppo_with_iw_sft_on_control_trains_one_policy_on_both_and_resumes_exactly(
    hopper_minari, data_dir, tmp_path, capsys
):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert main(small_run(hopper_minari, data_dir, straight, *CONTROL, "learner.steps=12")) == 0
    train = rows(straight)
    assert_loss_is_the_weighted_sum(train, {"ppo": 1.0, "iw_sft": 0.5})
    assert {"ppo/value_loss", "ppo/frames", "iw_sft/weight_ess"} <= set(train[0])
    assert float(train[-1]["ppo/frames"]) == 256  # two rollouts of 2 x 64 steps in 12 steps (8 a rollout)
    state = checkpoint.load(straight / "checkpoint.pt")
    assert any(key.startswith("parts.iw_sft.q.") for key in state["learner"]["algorithm"])  # iw-SFT's EMA q
    assert main(small_run(hopper_minari, data_dir, stopped, *CONTROL, "learner.steps=5")) == 0  # mid-rollout
    assert main(small_run(hopper_minari, data_dir, stopped, *CONTROL, "learner.steps=12")) == 0
    assert [row["loss"] for row in rows(stopped)] == [row["loss"] for row in train]
    assert_same_policy(straight, stopped)
    capsys.readouterr()


@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        (["algorithm.weights=[1.0]"], "must give each of the 2 parts ['grpo', 'iw_sft'] a finite weight >= 0"),
        (["algorithm.weights=[0,0]"], "not all 0"),
        (["algorithm.parts=[grpo,iw_sfft]"], "'iw_sfft' is not an algorithm (did you mean"),
        (["algorithm.parts=[grpo,mix]"], "a mix cannot be a part of one"),
        (["algorithm.parts=[sft,sft]"], "name each part once"),
        (["algorithm.parts=[grpo,ppo]"], "ppo runs on control envs, and arithmetic is a text env"),
        (["algorithm.weights=[a,b]"], "algorithm.weights=['a', 'b'] must give each of the 2 parts"),
        (["algorithm.weights=[true,1]"], "algorithm.weights=[True, 1] must give each of the 2 parts"),
        (["algorithm.batch_sizes=[4]"], "must give each of the parts ['grpo', 'iw_sft'] a positive whole batch size"),
        (["algorithm.batch_sizes=[abc,8]"], "algorithm.batch_sizes=['abc', 8] must give each of the parts"),
        (["algorithm.batch_sizes=[null,8.5]"], "algorithm.batch_sizes=[None, 8.5] must give each of the parts"),
    ],
)  # fmt: skip
def test_a_bad_mix_is_one_sentence_and_leaves_no_run(overrides, sentence, tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = ["train", *TEXT, f"data_dir={tmp_path / 'data'}", f"run_dir={run_dir}", "learner.steps=1", *overrides]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert sentence in error and "Traceback" not in error
    assert not run_dir.exists()


def test_ppo_in_a_mix_without_a_value_function_is_one_sentence(hopper_minari, data_dir, tmp_path, capsys):
    argv = small_run(hopper_minari, data_dir, tmp_path / "run", *CONTROL, "policy=gaussian_mlp", "learner.steps=1")
    assert main(argv) == 2
    assert "ppo learns a value function beside the policy, and policy=gaussian_mlp has none" in capsys.readouterr().err
