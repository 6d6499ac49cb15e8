"""Shared fixtures: small datasets recorded in a real MuJoCo env and written in real formats."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import absl.logging
import gymnasium
import h5py
import numpy as np
import pytest
import torch
from minari import EpisodeData

from rlsft.data import write_minari

ENV_ID = "Hopper-v5"

# absl's log handler (tensorboard and rliable import absl) holds the sys.stderr of its import, pytest's capture
# then, and closes that stream when hydra's logging setup in a later test closes every handler while a capsys
# fixture has replaced sys.stderr, and pytest's capture fails. It leaves sys.__stderr__ open: point it there.
absl.logging.get_absl_handler().python_handler.stream = sys.__stderr__

if "PYTEST_XDIST_WORKER" in os.environ:  # `pytest -n 2`: a thread a worker, two workers on two cores, not four threads
    torch.set_num_threads(1)


def record_episodes(num_episodes: int, seed: int = 0, max_steps: int = 60) -> list[EpisodeData]:
    """Hopper episodes under random policies of varied action scale, so returns spread out.

    Episodes longer than `max_steps` are truncated there, as a TimeLimit would.
    """
    env = gymnasium.make(ENV_ID)
    rng = np.random.default_rng(seed)
    episodes = []
    for index in range(num_episodes):
        observation, _ = env.reset(seed=seed + index)
        scale = rng.uniform(0.05, 1.0)
        observations, actions, rewards, terminations, truncations = [observation], [], [], [], []
        for step in range(max_steps):
            action = np.clip(scale * rng.standard_normal(env.action_space.shape), -1, 1).astype(np.float32)
            observation, reward, terminated, truncated, _ = env.step(action)
            truncated = truncated or step == max_steps - 1
            observations.append(observation)
            actions.append(action)
            rewards.append(reward)
            terminations.append(terminated)
            truncations.append(truncated and not terminated)
            if terminated or truncated:
                break
        episodes.append(
            EpisodeData(
                id=index,
                observations=np.array(observations),
                actions=np.array(actions),
                rewards=np.array(rewards),
                terminations=np.array(terminations),
                truncations=np.array(truncations),
                infos={},
            )
        )
    env.close()
    return episodes


def write_d4rl_file(path: Path, episodes: list[EpisodeData]) -> Path:
    """The D4RL v2 layout, written with h5py: flat arrays with terminals/timeouts flags."""
    with h5py.File(path, "w") as file:
        file["observations"] = np.concatenate([ep.observations[:-1] for ep in episodes]).astype(np.float32)
        file["next_observations"] = np.concatenate([ep.observations[1:] for ep in episodes]).astype(np.float32)
        file["actions"] = np.concatenate([ep.actions for ep in episodes]).astype(np.float32)
        file["rewards"] = np.concatenate([ep.rewards for ep in episodes]).astype(np.float32)
        file["terminals"] = np.concatenate([ep.terminations for ep in episodes])
        file["timeouts"] = np.concatenate([ep.truncations for ep in episodes])
    return path


@pytest.fixture(scope="session")
def hopper_episodes() -> list[EpisodeData]:
    return record_episodes(40)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("rlsft-data")


@pytest.fixture(scope="session")
def hopper_minari(hopper_episodes: list[EpisodeData], data_dir: Path) -> str:
    """A Minari dataset id, written under `data_dir/minari` with D4RL reference scores."""
    write_minari(
        "test/hopper/random-v0", hopper_episodes, ENV_ID, data_dir, ref_min_score=-20.272305, ref_max_score=3234.3
    )
    return "test/hopper/random-v0"


def small_run(data: str, data_dir: Path, run_dir: Path, *overrides: str) -> list[str]:
    """argv for a small `rlsft train` on `data`: batches of 8, a 20-step pi_ref, two final episodes."""
    return [
        "train",
        f"data={data}",
        f"data_dir={data_dir}",
        f"run_dir={run_dir}",
        "learner.batch_size=8",
        "learner.warmup_steps=5",
        "reference.learner.steps=20",
        "reference.learner.batch_size=8",
        "evaluation.episodes=2",
        "checkpoint_every=10",
        "log_every=5",
        "progress=false",
        *overrides,
    ]


TINY = ["algorithm=bc", "learner.steps=2", "learner.batch_size=4", "learner.warmup_steps=0", "policy.hidden_sizes=[16]",
        "evaluation.episodes=1", "env.max_episode_steps=50", "evaluation.every=0", "log_every=1"]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_train():
    """argv for `rlsft train` on `data`: BC, two steps, one evaluation episode of at most 50 steps: a fraction of a second."""
    return lambda data, data_dir, run_dir, *overrides: small_run(data, data_dir, run_dir, *TINY, *overrides)
