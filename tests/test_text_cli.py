"""Text end to end through `rlsft train` / `rlsft evaluate` on the shipped tiny model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from rlsft import checkpoint
from rlsft.algorithms import Algorithm
from rlsft.algorithms.iw_sft import IWSFT
from rlsft.cli import compose_config, main


def text_run(tmp_path: Path, algorithm: str, *overrides: str) -> list[str]:
    return [
        "train",
        "env=arithmetic",
        f"algorithm={algorithm}",
        f"data_dir={tmp_path / 'data'}",
        f"run_dir={tmp_path / algorithm}",
        "env.task.options.train_size=24",
        "env.task.options.test_size=8",
        "sampling.samples_per_prompt=2",
        "evaluation.episodes=8",
        "evaluation.every=0",
        "log_every=1",
        "progress=false",
        *overrides,
    ]


def rows(path: Path) -> list[dict]:
    with path.open() as file:
        return list(csv.DictReader(file))


# Every registered algorithm that trains on text datasets (a new one is tested here without listing it).
TEXT_OFFLINE = sorted(name for name, a in Algorithm.registry.items() if "text" in a.domains and a.source == "dataset")


@pytest.mark.parametrize("algorithm", TEXT_OFFLINE)
def test_sft_family_trains_on_verified_samples_of_the_start_model(algorithm, tmp_path):
    assert main(text_run(tmp_path, algorithm, "learner.steps=3")) == 0
    summary = json.loads((tmp_path / algorithm / "summary.json").read_text())
    assert summary["steps"] == 3 and 0 <= summary["accuracy"] <= 1
    assert 0 < summary["completions_kept"] <= summary["completions_total"] == 48
    train = rows(tmp_path / algorithm / "train.csv")
    assert [int(row["step"]) for row in train] == [1, 2, 3]
    if algorithm.startswith("iw_sft"):  # LLM defaults: q = the policy, not self-normalised
        assert float(train[0]["weight_mean"]) == pytest.approx(1.0, abs=1e-3)  # q = pi_ref before any step
    # The start model's samples were made once and are reused by the next run.
    assert len(list((tmp_path / "data" / "text").iterdir())) == 1


def test_grpo_trains_on_groups_and_resumes(tmp_path, capsys):
    overrides = ["algorithm.rollout.prompts_per_batch=2", "algorithm.rollout.samples_per_prompt=4"]
    assert main(text_run(tmp_path, "grpo", "learner.steps=2", *overrides)) == 0
    assert main(text_run(tmp_path, "grpo", "learner.steps=4", *overrides)) == 0
    train = rows(tmp_path / "grpo" / "train.csv")
    assert [int(row["step"]) for row in train] == [1, 2, 3, 4]
    assert [float(row["completions"]) for row in train] == [8, 16, 24, 32]  # 2 prompts x 4 samples a step
    assert {"clip_fraction", "log_ratio_mean", "log_ratio_max", "ratio_ess", "reward_mean", "accuracy"} <= set(train[0])
    assert float(train[0]["log_ratio_max"]) < 1e-4  # one step per round: the sampler's log-probs are the policy's
    capsys.readouterr()
    checkpoint_path = tmp_path / "grpo" / "checkpoint.pt"
    assert checkpoint.load(checkpoint_path)["learner"]["step"] == 4
    assert main(["evaluate", f"checkpoint={checkpoint_path}", "episodes=8"]) == 0
    assert 0 <= json.loads(capsys.readouterr().out)["accuracy"] <= 1


def test_grpo_scores_completions_under_the_policy_at_their_sampling_temperature(tmp_path):
    """At temperature 0.5 the sampler draws from softmax(logits / 0.5): the loss's ratio on a fresh round is 1."""
    rollout = ["algorithm.rollout.prompts_per_batch=2", "algorithm.rollout.samples_per_prompt=4"]
    assert main(text_run(tmp_path, "grpo", "learner.steps=1", "algorithm.rollout.temperature=0.5", *rollout)) == 0
    assert float(rows(tmp_path / "grpo" / "train.csv")[0]["log_ratio_max"]) < 1e-4  # was 0.92


def test_a_round_is_cut_into_as_many_minibatches_as_asked(tmp_path):
    """6 groups in 4 minibatches are 2, 2, 1 and 1 groups: a round lasts 4 steps (chunk gave 3)."""
    rollout = ["algorithm.rollout.prompts_per_batch=6", "algorithm.rollout.samples_per_prompt=2"]
    assert main(text_run(tmp_path, "grpo", "learner.steps=5", "algorithm.rollout.minibatches=4", *rollout)) == 0
    assert [float(row["completions"]) for row in rows(tmp_path / "grpo" / "train.csv")] == [12, 12, 12, 12, 24]


def test_a_checkpoint_naming_code_to_import_is_evaluated_only_when_trusted(tmp_path, capsys):
    """A checkpoint holds no pickled objects, but its config can name a function for the verifier to import and
    call: `rlsft evaluate` and `rlsft export` of a file from elsewhere must not run it unasked."""
    verifier = ["verifier=user_callable", "verifier.options.function=operator:contains"]
    assert main(text_run(tmp_path, "sft", "learner.steps=1", *verifier)) == 0
    run_dir = tmp_path / "sft"
    for command in (["evaluate", "episodes=2"], ["export", f"out={tmp_path / 'exported'}"]):
        capsys.readouterr()
        assert main([*command, f"checkpoint={run_dir}", "trust_code=yes"]) == 2
        error = capsys.readouterr().err
        assert (
            "names code that its evaluation would import and call (verifier.options.function=operator:contains)"
            in error
        )
        assert "pass trust_code=true only if you trust where the checkpoint came from" in error
        assert main([*command, f"checkpoint={run_dir}", "trust_code=true"]) == 0
    assert (tmp_path / "exported" / "config.json").is_file()


def test_grpo_resume_mid_round_is_exact(tmp_path):
    """2 minibatches a round, stopped after the first of round 2, resumed == straight."""
    overrides = ["algorithm.rollout.prompts_per_batch=2", "algorithm.rollout.samples_per_prompt=4",
                 "algorithm.rollout.minibatches=2", "learner.schedule=constant", "learner.warmup_steps=0"]  # fmt: skip
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(text_run(straight, "grpo", "learner.steps=4", *overrides)) == 0
    assert main(text_run(resumed, "grpo", "learner.steps=3", *overrides)) == 0
    assert main(text_run(resumed, "grpo", "learner.steps=4", *overrides)) == 0
    a, b = (checkpoint.load(run / "grpo" / "checkpoint.pt")["learner"]["policy"] for run in (straight, resumed))
    for name, tensor in a.items():
        assert torch.equal(tensor, b[name]), f"{name} differs after resume"


def test_curated_file_in_the_s1k_layout_trains_sft(tmp_path):
    records = [
        {
            "question": f"What is {a} + {a}?",
            "deepseek_thinking_trajectory": f"{a} + {a}",
            "deepseek_attempt": f"#### {2 * a}",
        }
        for a in range(10, 20)
    ]
    path = tmp_path / "s1k.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    assert main(text_run(tmp_path, "sft", f"data={path}", "learner.steps=2")) == 0
    summary = json.loads((tmp_path / "sft" / "summary.json").read_text())
    assert summary["completions_kept"] == summary["completions_total"] == 10


def test_the_summary_counts_the_held_out_prompts_evaluated(tmp_path):
    """evaluation.episodes=8 of a 3-prompt test split evaluates 3."""
    assert main(text_run(tmp_path, "sft", "learner.steps=1", "env.task.options.test_size=3")) == 0
    assert json.loads((tmp_path / "sft" / "summary.json").read_text())["episodes"] == 3


def test_one_loss_implementation_serves_both_domains():
    for env in ("hopper", "arithmetic"):
        cfg = compose_config("train", [f"env={env}", "algorithm=iw_sft"])
        assert Algorithm.registry[cfg.algorithm.name] is IWSFT
    control, text = (compose_config("train", [f"env={env}", "algorithm=iw_sft"]) for env in ("hopper", "arithmetic"))
    assert (control.algorithm.options.q, control.algorithm.options.alpha) == ("ema", 10.0)  # method.md §4, control
    assert (text.algorithm.options.q, text.algorithm.options.alpha, text.algorithm.options.w_max) == (
        "policy",
        1.0,
        16.0,
    )
    assert text.algorithm.options.reduction == "token_mean" and not text.algorithm.options.self_normalize


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["env=arithmetic", "algorithm=ppo"], "ppo runs on control envs"),
        (["env=hopper", "algorithm=grpo"], "grpo runs on text envs"),
        (["env=arithmetic", "verifier=nope"], "Unknown verifier 'nope'"),
        (["env=arithmetic", "data=/nowhere/s1k.jsonl"], "does not exist"),
        (
            [
                "env=arithmetic",
                "algorithm=grpo",
                "algorithm.rollout.minibatches=4",
                "algorithm.rollout.prompts_per_batch=2",
            ],
            "algorithm.rollout.minibatches=4 is more than the 2 prompts of each batch",
        ),
        (
            ["env=arithmetic", "algorithm=grpo", "+algorithm.rollout.temprature=0.5"],
            "algorithm.rollout.temprature is not an option (did you mean temperature?)",
        ),
        # these three were tracebacks from torch.cat and from transformers' generate
        (["env=arithmetic", "sampling.samples_per_prompt=0"], "sampling.samples_per_prompt=0 must be positive"),
        (["env=arithmetic", "sampling.temperature=-1"], "sampling.temperature=-1 not negative (0: greedy)"),
        (["env=arithmetic", "algorithm=grpo", "algorithm.rollout.temperature=-1"], "temperature=-1 must be positive"),
        # greedy completions of a prompt are all the same: every advantage 0, nothing learnt (it trained)
        (["env=arithmetic", "algorithm=grpo", "algorithm.rollout.temperature=0"], "temperature=0 must be positive"),
        # these two trained silently
        (["env=arithmetic", "algorithm=grpo", "algorithm.options.kl_coef=-1"], "kl_coef=-1 not negative"),
        (["env=arithmetic", "algorithm=grpo", "algorithm.options.clip_epsilon=0"], "clip_epsilon=0 must be positive"),
        (["env=arithmetic", "algorithm=grpo", "algorithm.rollout.samples_per_prompt=1"], "a group of one"),
        # a traceback from range() in the sampler
        (["env=arithmetic", "generation.completions_per_call=0"], "completions_per_call=0 must be a positive whole"),
        (["env=arithmetic", "env.max_new_tokens=0"], "env.max_new_tokens=0 must be a positive whole number"),
        # these two were tracebacks: getattr(torch, "foo"), and max() of no prompts in the sampler
        (["env=arithmetic", "policy.dtype=foo"], "policy.dtype='foo' is not one of float32, bfloat16, float16"),
        (
            ["env=arithmetic", "algorithm=sft", "env.task.options.digits=1", "+env.task.options.test_fraction=0.9999"],
            "arithmetic's train split holds no examples",
        ),
    ],
)
def test_text_mistakes_get_one_sentence(overrides, message, tmp_path, capsys):
    assert main(["train", *overrides, f"run_dir={tmp_path / 'run'}", f"data_dir={tmp_path}", "progress=false"]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
