"""SAC (algorithm=sac): torchrl's SACLoss through rlsft's learner and loop, on a replay buffer of real Hopper steps."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from tensordict import TensorDict

from rlsft import checkpoint
from rlsft.algorithms.sac import SAC, Critic
from rlsft.cli import main
from rlsft.learner import Learner, LearnerConfig
from rlsft.policies.tanh_gaussian import TanhGaussian
from rlsft.sources.replay import ReplaySource

SMALL = ["train", "algorithm=sac", "env=hopper", "algorithm.replay.learning_starts=100", "algorithm.replay.batch_size=32",
         "policy.hidden_sizes=[32,32]", "algorithm.options.critic_hidden_sizes=[32,32]", "evaluation.every=0",
         "evaluation.episodes=1", "env.max_episode_steps=100", "log_every=10", "checkpoint_every=1000",
         "progress=false", "learner.compile=false"]  # fmt: skip


def rows(run_dir: Path) -> list[dict]:
    with (run_dir / "train.csv").open() as file:
        return list(csv.DictReader(file))


def test_a_sac_run_stopped_and_started_again_ends_as_one_that_was_not(tmp_path, capsys):
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert main([*SMALL, f"run_dir={straight}", "learner.steps=120"]) == 0
    assert main([*SMALL, f"run_dir={stopped}", "learner.steps=70"]) == 0  # the buffer, the episode, the targets
    assert main([*SMALL, f"run_dir={stopped}", "learner.steps=120"]) == 0
    train = rows(straight)
    assert [row["loss"] for row in rows(stopped)] == [row["loss"] for row in train]
    assert float(train[-1]["frames"]) == 100 + 120  # the random steps, then one env step a gradient step
    for folder in (straight, stopped):  # the frames collected, not the replay.frames setting learner.steps overrode
        assert json.loads((folder / "summary.json").read_text())["frames"] == 100 + 120
    assert float(train[-1]["alpha"]) < 1.0  # the temperature moves from its start (alpha = 1) toward -dim(A)
    states = [checkpoint.load(folder / "checkpoint.pt")["learner"] for folder in (straight, stopped)]
    for part in ("policy", "algorithm"):  # the actor, and the critics, their targets and log alpha
        for name, value in states[0][part].items():
            assert torch.equal(states[1][part][name], value), name
    capsys.readouterr()


def test_the_critics_are_relu_networks_as_cleanrls_and_tanh_ones_on_request():
    torch.manual_seed(0)
    observation, action = torch.randn(5, 11), torch.rand(5, 3) * 2 - 1
    for critic, activation in ((Critic(11, 3, (16, 16)), torch.relu), (Critic(11, 3, (16, 16), "tanh"), torch.tanh)):
        first, second, out = (layer for layer in critic.net if isinstance(layer, torch.nn.Linear))
        by_hand = out(activation(second(activation(first(torch.cat([observation, action], dim=-1))))))
        torch.testing.assert_close(critic(observation, action), by_hand)


def test_a_sac_run_made_before_the_critic_activation_option_resumes_only_as_it_was_made(tmp_path, capsys):
    """Its checkpoint holds no critic_activation and its critics were Tanh: relu ones would load its weights."""
    run_dir = tmp_path / "run"
    assert main([*SMALL, f"run_dir={run_dir}", "learner.steps=20", "algorithm.options.critic_activation=tanh"]) == 0
    state = checkpoint.load(run_dir / "checkpoint.pt")
    state["config"] = state["config"].replace("    critic_activation: tanh\n", "")
    assert "critic_activation" not in state["config"]
    torch.save(state, run_dir / "checkpoint.pt")  # as rlsft wrote it before the option
    assert main([*SMALL, f"run_dir={run_dir}", "learner.steps=40"]) == 2
    error = capsys.readouterr().err
    assert "other settings (algorithm.options.critic_activation: tanh there, relu here)" in error
    tanh = [*SMALL, f"run_dir={run_dir}", "learner.steps=40", "algorithm.options.critic_activation=tanh"]
    assert main(tanh) == 0
    assert float(rows(run_dir)[-1]["step"]) == 40


def test_the_critic_loss_is_the_soft_bellman_error_with_terminal_steps_not_bootstrapped():
    torch.manual_seed(0)
    policy, sac = TanhGaussian(11, 3, hidden_sizes=(16,)), SAC(gamma=0.9, critic_hidden_sizes=(16,))
    sac.attach(policy)
    # the replay buffer's layout: steps 1, 3, 5, 7 terminate; 2 and 6 are cut by the time limit (done, bootstrapped)
    terminated = torch.arange(8).remainder(2).bool().view(8, 1, 1)
    truncated = torch.tensor([False, False, True, False, False, False, True, False]).view(8, 1, 1)
    batch = TensorDict(
        observation=torch.randn(8, 1, 11), action=torch.rand(8, 1, 3) * 2 - 1, mask=torch.ones(8, 1, dtype=torch.bool),
        next={"observation": torch.randn(8, 1, 11), "reward": torch.randn(8, 1, 1), "terminated": terminated,
              "truncated": truncated, "done": terminated | truncated},
        batch_size=[8, 1],
    )  # fmt: skip
    torch.manual_seed(1)
    q_loss = sac.loss(policy, batch).metrics["q_loss"]
    torch.manual_seed(1)  # the target's next actions are SACLoss's first draw
    step = batch[:, 0]
    with torch.no_grad():
        next_distribution = policy.distribution(step["next", "observation"])
        next_action = next_distribution.rsample()
        next_log_prob = next_distribution.log_prob(next_action)

    def q(params: TensorDict, observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        with params.to_module(sac.sac.qvalue_network):
            return sac.sac.qvalue_network.module(observation, action).squeeze(-1)

    targets, critics = sac.sac.target_qvalue_network_params, sac.sac.qvalue_network_params
    with torch.no_grad():
        soft_value = torch.min(*(q(targets[k], step["next", "observation"], next_action) for k in range(2)))
        soft_value = soft_value - 1.0 * next_log_prob  # alpha starts at 1
        not_terminated = (~step["next", "terminated"]).float().squeeze(-1)
        target = step["next", "reward"].squeeze(-1) + 0.9 * not_terminated * soft_value
        expected = sum(((q(critics[k], step["observation"], step["action"]) - target) ** 2).mean() for k in range(2))
    torch.testing.assert_close(q_loss, expected, rtol=1e-5, atol=1e-6)


def test_the_critics_train_at_their_own_rate_and_the_targets_follow_them_by_tau():
    torch.manual_seed(0)
    policy, sac = TanhGaussian(11, 3, hidden_sizes=(16,)), SAC(tau=0.1, q_lr=1e-2, critic_hidden_sizes=(16,))
    config = LearnerConfig(steps=10, lr=1e-4, warmup_steps=0, schedule="constant", device="cpu")
    learner = Learner(policy, sac, config)
    rates = sorted(group["lr"] for group in learner.optimizer.param_groups)
    assert rates == [1e-4, 1e-2]  # the actor at learner.lr; the critics and log alpha at q_lr
    assert len(learner.parameters) == len(
        {id(p) for p in learner.parameters}
    )  # the actor's once, though SACLoss holds it
    source = ReplaySource(policy, "Hopper-v5", buffer_size=1000, learning_starts=50, batch_size=16,
                          device=torch.device("cpu"), seed=0)  # fmt: skip
    learner.train_step(source.sample())
    critics, targets = sac.sac.qvalue_network_params, sac.sac.target_qvalue_network_params
    before = {"critics": critics.detach().clone(), "targets": targets.detach().clone()}
    learner.train_step(source.sample())  # before its loss: targets <- 0.9 targets + 0.1 critics (as step 1 left them)
    torch.testing.assert_close(targets.detach(), before["targets"] * 0.9 + before["critics"] * 0.1)
    source.close()


@pytest.mark.parametrize(
    ("overrides", "sentence"),
    [
        (["policy=gaussian_mlp"], "sac trains a squashed-Gaussian actor, and policy=gaussian_mlp is not one"),
        (["algorithm.replay.frames=100"], "algorithm.replay.frames=100 must exceed learning_starts=100"),
        (["algorithm.options.tau=0"], "SAC needs gamma and tau in (0, 1]"),
        (["algorithm.options.critic_activation=gelu"], "critic_activation='gelu' is not one of ['relu', 'tanh']"),
    ],
)
def test_a_bad_sac_setting_is_one_sentence_and_leaves_no_run(overrides, sentence, tmp_path, capsys):
    assert main([*SMALL, f"run_dir={tmp_path / 'run'}", *overrides]) == 2
    error = capsys.readouterr().err
    assert sentence in error and "Traceback" not in error
    assert not (tmp_path / "run").exists()
