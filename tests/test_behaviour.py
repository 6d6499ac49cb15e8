"""Behaviour datasets: a PPO run's snapshots become policies, the policies become Minari data."""

from __future__ import annotations

import json

import pytest
import torch

from rlsft import checkpoint
from rlsft.checkpoint import seed_everything
from rlsft.cli import compose_config, main
from rlsft.data import load_dataset
from rlsft.data.making import export_policies, make_dataset
from rlsft.envs.control import ControlEnv
from rlsft.policies import make_policy

HOPPER = ControlEnv(name="hopper", id="Hopper-v5", ref_min_score=-20.272305, ref_max_score=3234.3)


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> dict:
    """A tiny PPO run with snapshots, exported as behaviour policies into a temporary root."""
    run_dir = tmp_path_factory.mktemp("ppo")
    argv = ["train", "algorithm=ppo", "env=hopper", f"run_dir={run_dir}", "algorithm.rollout.frames=2048",
            "algorithm.rollout.num_envs=2", "algorithm.rollout.frames_per_env=128", "algorithm.rollout.minibatches=2",
            "algorithm.rollout.epochs=1", "algorithm.evaluation_every=4", "evaluation.snapshots=true",
            "evaluation.interim_episodes=2", "evaluation.episodes=2", "progress=false"]  # fmt: skip
    assert main(argv) == 0
    root = tmp_path_factory.mktemp("policies")
    record = export_policies(run_dir, "hopper", 11, 3, "test", root=root)
    return {"root": root, "record": record}


def test_export_picks_medium_and_records_the_replay(shipped) -> None:
    record, folder = shipped["record"], shipped["root"] / "hopper"
    assert (folder / "expert.pt").is_file() and (folder / "medium.pt").is_file()
    assert len(record["replay"]) == len(record["replay_frames"]) >= 1
    # Snapshots every 2 rollouts of 2 x 128 frames: each gets half the frames on either side of it.
    assert record["medium_step"] % 4 == 0 and len(record["replay"]) >= 2
    assert record["replay_frames"] == [256] + [512] * (len(record["replay"]) - 2) + [256]
    assert json.loads((folder / "record.json").read_text()) == record


@pytest.mark.parametrize("kind", ["random", "medium", "expert", "medium-replay", "medium-expert"])
def test_made_datasets_load_back_with_reference_scores(kind, shipped, tmp_path) -> None:
    ident = make_dataset(HOPPER, kind, 600, str(tmp_path), num_envs=4, policy_root=shipped["root"])
    assert ident == f"rlsft/hopper/{kind}-s600-v0"
    dataset = load_dataset(ident, tmp_path)
    trajectories = dataset.trajectories
    lengths = trajectories["mask"].sum(-1)
    assert lengths.sum() >= 600  # whole episodes until the budget is reached
    assert (lengths.sum() - lengths.max()) < 600 + 4 * 1000
    done = trajectories["next", "done"].squeeze(-1)
    assert (done.sum(-1) == 1).all() and done[range(len(lengths)), lengths - 1].all()  # one end per episode
    assert trajectories["action"].abs().max() <= 1.0
    assert (dataset.ref_min_score, dataset.ref_max_score) == (-20.272305, 3234.3)
    assert make_dataset(HOPPER, kind, 600, str(tmp_path), policy_root=shipped["root"]) == ident  # made once


def test_replay_starts_with_the_untrained_policy(shipped) -> None:
    """replay/000 is the step-0 snapshot: PPO's initial actor, as seeding rebuilds it."""
    seed_everything(0)  # the tiny run's seed; the trainer builds the policy right after seeding
    untrained = make_policy(compose_config("train", ["algorithm=ppo"]).policy, observation_dim=11, action_dim=3)
    replay = checkpoint.load(shipped["root"] / "hopper" / "replay" / "000.pt")["policy"]
    for name, tensor in untrained.actor.state_dict().items():
        assert torch.equal(tensor, replay[name]), name


def test_a_dataset_depends_on_its_seed_alone_and_leaves_the_callers_rng(tmp_path) -> None:
    """`rlsft data make` and a training run that makes the same dataset on first use record the
    same episodes, whatever either had drawn from torch's RNG before."""
    made = []
    for torch_seed in (1, 2):
        torch.manual_seed(torch_seed)
        folder = tmp_path / str(torch_seed)
        made.append(load_dataset(make_dataset(HOPPER, "medium", 300, str(folder), num_envs=2), folder).trajectories)
        after = torch.rand(3)
        torch.manual_seed(torch_seed)
        assert torch.equal(after, torch.rand(3))  # the caller's stream continues as if nothing was drawn
    assert (made[0] == made[1]).all()
