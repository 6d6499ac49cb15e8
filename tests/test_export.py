"""`rlsft export`: a trained policy that loads without rlsft and acts as its checkpoint does."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import small_run
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlsft import checkpoint
from rlsft.cli import compose_config, main
from rlsft.envs.control import env_dims
from rlsft.policies import make_policy
from rlsft.policies.causal_lm import pad, position_ids


@pytest.mark.parametrize("algorithm", ["bc", "ppo", "sac"])
def test_a_control_policy_exports_as_a_program_with_the_checkpoints_actions(
    algorithm, hopper_minari, data_dir, tmp_path, capsys
):
    run_dir, out = tmp_path / "run", tmp_path / "exported"
    if algorithm == "bc":
        argv = small_run(hopper_minari, data_dir, run_dir, "algorithm=bc", "learner.steps=10", "evaluation.every=0")
    elif algorithm == "sac":  # the tanh-Gaussian actor
        argv = ["train", "algorithm=sac", f"run_dir={run_dir}", "algorithm.replay.learning_starts=50", "learner.steps=5",
                "learner.compile=false", "progress=false", "evaluation.episodes=1", "env.max_episode_steps=20"]  # fmt: skip
    else:
        argv = ["train", "algorithm=ppo", f"run_dir={run_dir}", "algorithm.rollout.frames=256", "progress=false",
                "algorithm.rollout.num_envs=2", "algorithm.rollout.frames_per_env=64", "algorithm.rollout.epochs=1",
                "algorithm.rollout.minibatches=2", "evaluation.episodes=1", "env.max_episode_steps=20"]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["export", f"checkpoint={run_dir}", f"out={out}"]) == 0
    written = json.loads(capsys.readouterr().out)
    program = torch.export.load(written["program"]).module()  # torch alone, no rlsft class
    state = checkpoint.load(run_dir / "checkpoint.pt")
    cfg = compose_config("train", [f"algorithm={algorithm}"])
    observation_dim, action_dim = env_dims("Hopper-v5")
    policy = make_policy(cfg.policy, observation_dim=observation_dim, action_dim=action_dim)
    policy.load_state_dict(state["learner"]["policy"])
    for rows in (1, 7):  # any batch size
        observation = torch.randn(rows, observation_dim) * 3
        assert torch.equal(program(observation), policy.mean_action(observation))


def test_a_text_policy_exports_as_a_transformers_model_with_the_checkpoints_greedy_completions(tmp_path, capsys):
    run_dir, out = tmp_path / "run", tmp_path / "exported"
    assert main(["train", "env=arithmetic", "algorithm=sft", f"data_dir={tmp_path / 'data'}", f"run_dir={run_dir}",
                 "env.task.options.train_size=16", "env.task.options.test_size=4", "sampling.samples_per_prompt=2",
                 "learner.steps=3", "evaluation.episodes=4", "evaluation.every=0", "progress=false"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["export", f"checkpoint={run_dir}", f"out={out}"]) == 0
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"} <= {
        path.name for path in out.iterdir()
    }
    model, tokenizer = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    cfg = compose_config("train", ["env=arithmetic"])
    policy = make_policy(cfg.policy)
    policy.load_state_dict(checkpoint.load(run_dir / "checkpoint.pt")["learner"]["policy"])
    trained = {name: value for name, value in policy.model.state_dict().items()}
    assert any(
        not torch.equal(trained[name], value) for name, value in make_policy(cfg.policy).model.state_dict().items()
    )
    prompts = [tokenizer(text).input_ids for text in ("12+7=", "3*4=", "25-9=")]
    tokens, attention = pad(prompts, tokenizer.pad_token_id)

    def greedy(network):
        return network.generate(input_ids=tokens, attention_mask=attention, position_ids=position_ids(attention),
                                max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)  # fmt: skip

    assert torch.equal(greedy(model), greedy(policy.model))


def test_export_refuses_a_folder_that_holds_files(tmp_path, capsys):
    out = tmp_path / "exported"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["export", f"checkpoint={tmp_path / 'run'}", f"out={out}"]) == 2
    assert "already holds files; pass a new or empty folder" in capsys.readouterr().err
    assert (out / "notes.txt").read_text() == "keep me"
