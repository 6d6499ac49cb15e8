"""PPO: GAE against a hand computation, the loss on rollout minibatches, a CLI run and an exact resume."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from tensordict import TensorDict

from rlsft import checkpoint
from rlsft.algorithms.ppo import PPO
from rlsft.cli import main
from rlsft.policies import ActorCritic
from rlsft.sources.rollouts import RolloutSource

GAMMA, LMBDA, VALUE = 0.9, 0.8, 0.5


@pytest.fixture
def source() -> RolloutSource:
    torch.manual_seed(0)
    policy = ActorCritic(11, 3)
    critic_out = [m for m in policy.critic.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():  # V(s) = 0.5 everywhere: the hand computation below stays simple
        critic_out.weight.zero_()
        critic_out.bias.fill_(VALUE)
    return RolloutSource(policy, "Hopper-v5", 1, 5, epochs=2, minibatches=1, gamma=GAMMA, lmbda=LMBDA,
                         normalize_rewards=False, device=torch.device("cpu"), seed=0)  # fmt: skip


def hand_gae(reward: list[float], terminated: list[bool], done: list[bool]) -> list[float]:
    """A_t = delta_t + gamma lambda (1 - done_t) A_{t+1}, delta_t = r_t + gamma V (1 - term_t) - V."""
    advantages, running = [], 0.0
    for r, term, d in reversed(list(zip(reward, terminated, done))):
        delta = r + GAMMA * VALUE * (1 - term) - VALUE
        running = delta + GAMMA * LMBDA * (1 - d) * running
        advantages.append(running)
    return advantages[::-1]


def test_gae_matches_a_hand_computation(source: RolloutSource) -> None:
    # One env, 5 steps: a truncation after step 1 (bootstraps) and a termination at step 3 (does not).
    reward = [1.0, 2.0, 0.5, -1.0, 3.0]
    terminated = [False, False, False, True, False]
    truncated = [False, True, False, False, False]
    done = [a or b for a, b in zip(terminated, truncated)]
    flags = lambda values: torch.tensor([values]).unsqueeze(-1)  # noqa: E731
    rollout = TensorDict(
        {
            "observation": torch.randn(1, 5, 11),
            "action": torch.rand(1, 5, 3),
            "sample_log_prob": torch.randn(1, 5),
            "next": {"observation": torch.randn(1, 5, 11), "reward": flags(reward), "terminated": flags(terminated),
                     "done": flags(done)},
        },
        batch_size=[1, 5],
    )  # fmt: skip
    steps = source.advantage_steps(rollout, torch.tensor([reward]))
    assert steps.batch_size == torch.Size([5]) and steps["mask"].shape == (5, 1)
    expected = torch.tensor(hand_gae(reward, terminated, done))
    torch.testing.assert_close(steps["advantage"].squeeze(-1), expected)
    torch.testing.assert_close(steps["value_target"].squeeze(-1), expected + VALUE)


def test_rollout_minibatches_feed_the_ppo_loss(source: RolloutSource) -> None:
    minibatch = source.sample()  # one rollout of 5 steps, 2 epochs x 1 minibatch
    assert sorted(minibatch.keys()) == sorted(source.keys)  # the keys the trainer checks losses against
    assert set(PPO().in_keys) <= set(source.keys)
    assert minibatch.batch_size == torch.Size([5]) and len(source.queue) == 1
    assert minibatch["action"].shape == (5, 1, 3) and minibatch["sample_log_prob"].shape == (5, 1)
    # Right after collection the policy is unchanged: the ratio is 1 and nothing is clipped.
    output = PPO().loss(source.policy, minibatch)
    assert output.loss.dim() == 0 and torch.isfinite(output.loss)
    assert output.metrics["clip_fraction"] == 0 and abs(output.metrics["log_ratio_max"]) < 1e-5
    assert source.metrics()["frames"] == 5


def test_ppo_trains_end_to_end_through_the_cli(tmp_path, capsys) -> None:
    run_dir = tmp_path / "ppo"
    argv = ["train", "algorithm=ppo", "env=hopper", f"run_dir={run_dir}", "algorithm.rollout.frames=1024",
            "algorithm.rollout.num_envs=2", "algorithm.rollout.frames_per_env=128", "algorithm.rollout.minibatches=4",
            "algorithm.rollout.epochs=2", "evaluation.episodes=2", "log_every=4", "progress=false"]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 4 * 2 * 4  # 1024 frames = 4 rollouts of 2 x 128, 2 epochs, 4 minibatches
    assert summary["frames"] == 1024
    short = tmp_path / "short"  # 100 frames buy one whole rollout of 2 x 128: the summary says what was collected
    assert main([*argv[:3], f"run_dir={short}", "algorithm.rollout.frames=100", *argv[5:]]) == 0
    assert json.loads((short / "summary.json").read_text())["frames"] == 256
    header = (run_dir / "train.csv").read_text().splitlines()[0].split(",")
    assert {"policy_loss", "value_loss", "clip_fraction", "approx_kl", "frames", "episode_return"} <= set(header)


@pytest.mark.parametrize("workers", [1, 2])  # 2: torchrl's multi-process collector, one env per process
def test_ppo_resume_is_exact(tmp_path, workers) -> None:
    """Stopped mid-rollout with episodes running, then resumed == straight: the envs' MuJoCo
    states, the minibatches left, running statistics and RNGs are all restored."""
    common = ["train", "algorithm=ppo", "env=hopper", "algorithm.rollout.num_envs=2", "algorithm.rollout.frames_per_env=64",
              "algorithm.rollout.minibatches=4", "algorithm.rollout.epochs=2", "learner.schedule=constant",
              "evaluation.every=0", "evaluation.episodes=1", "log_every=1", "progress=false",
              f"algorithm.rollout.workers={workers}"]  # fmt: skip
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main([*common, f"run_dir={straight}", "learner.steps=30"]) == 0
    assert main([*common, f"run_dir={resumed}", "learner.steps=13"]) == 0  # 8 steps a rollout: 3 minibatches left
    assert main([*common, f"run_dir={resumed}", "learner.steps=30"]) == 0
    a, b = (checkpoint.load(run / "checkpoint.pt") for run in (straight, resumed))
    for name, tensor in a["learner"]["policy"].items():
        assert torch.equal(tensor, b["learner"]["policy"][name]), f"policy.{name} differs after resume"
    if workers == 1:
        assert torch.equal(a["source"]["env"]["simulator"][0], b["source"]["env"]["simulator"][0])
    else:
        assert torch.equal(
            a["source"]["env"]["worker1"]["episodes"]["simulator"][0],
            b["source"]["env"]["worker1"]["episodes"]["simulator"][0],
        )

    def rows(run_dir) -> list[dict]:  # wall-clock differs from run to run
        lines = list(csv.DictReader((run_dir / "train.csv").open()))
        return [{key: value for key, value in row.items() if key != "seconds"} for row in lines]

    assert rows(straight) == rows(resumed)
    assert any(row["episode_return"] for row in rows(resumed)[13:])  # episodes ended after the resume


def test_worker_processes_sample_with_the_current_policy() -> None:
    torch.manual_seed(0)
    policy = ActorCritic(11, 3)
    source = RolloutSource(policy, "Hopper-v5", 2, 32, epochs=1, minibatches=1, gamma=GAMMA, lmbda=LMBDA,
                           normalize_rewards=True, device=torch.device("cpu"), seed=0, workers=2)  # fmt: skip
    try:
        for _ in range(2):
            rollout = source.collect()
            assert rollout.shape == (2, 32)
            log_prob = policy.actor.distribution(rollout["observation"]).log_prob(rollout["action"]).sum(-1)
            torch.testing.assert_close(rollout["sample_log_prob"], log_prob, rtol=1e-4, atol=1e-4)
            with torch.no_grad():  # a training step's worth of change, and new observation statistics
                for parameter in policy.parameters():
                    parameter.add_(0.3 * torch.randn_like(parameter))
                policy.update_observation_statistics(rollout["observation"].flatten(0, 1))
    finally:
        source.close()
