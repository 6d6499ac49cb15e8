"""Behaviour datasets: a PPO run's snapshots become policies, the policies become Minari data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from rlsft import checkpoint
from rlsft.checkpoint import seed_everything
from rlsft.cli import compose_config, main
from rlsft.data import load_dataset, making
from rlsft.data.making import VERSIONS, behaviour_record, load_behaviour, make_dataset, policy_folder
from rlsft.data.policy_export import acting_policy, export_policies, write_policies
from rlsft.envs.control import ControlEnv
from rlsft.errors import RLSFTError
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
    record = export_policies(run_dir, "hopper", 11, 3, "test", root)
    return {"root": root, "record": record, "run_dir": run_dir}


@pytest.fixture(scope="module")
def shipped_sac(tmp_path_factory) -> dict:
    """A tiny SAC run with snapshots (100 random steps, then 200 of the policy), exported likewise."""
    run_dir = tmp_path_factory.mktemp("sac")
    argv = ["train", "algorithm=sac", "env=hopper", f"run_dir={run_dir}", "algorithm.replay.learning_starts=100",
            "learner.steps=200", "learner.compile=false", "policy.hidden_sizes=[32,32]",
            "algorithm.options.critic_hidden_sizes=[32,32]", "algorithm.replay.batch_size=32",
            "algorithm.evaluation_every=50", "evaluation.snapshots=true", "evaluation.interim_episodes=1",
            "evaluation.episodes=1", "log_every=10", "progress=false"]  # fmt: skip
    assert main(argv) == 0
    root = tmp_path_factory.mktemp("policies")
    return {"root": root, "record": export_policies(run_dir, "hopper", 11, 3, "test", root), "run_dir": run_dir}


def test_a_sac_run_ships_its_squashed_gaussian_and_makes_data_with_it(shipped_sac, tmp_path) -> None:
    record = shipped_sac["record"]
    assert record["policy"] == {"name": "tanh_gaussian", "hidden_sizes": [32, 32], "activation": "relu",
                                "log_std_min": -5.0, "log_std_max": 2.0}  # fmt: skip
    assert record["training"]["name"] == "sac" and record["medium_step"] % 50 == 0
    # 300 frames in 200 steps (the random start spread over them): a snapshot every 50 steps gets half of the 75
    # frames on either side of it
    assert record["replay_frames"] == [38] + [75] * (len(record["replay"]) - 2) + [38]
    expert = checkpoint.load(shipped_sac["root"] / "hopper" / "expert.pt")["policy"]
    assert set(expert) == {"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "net.4.weight", "net.4.bias"}
    ident = make_dataset(HOPPER, "medium-replay", 400, str(tmp_path), version=1, policy_root=shipped_sac["root"])
    assert ident == "rlsft/hopper/medium-replay-s400-v1"  # a version of its own, beside v0's
    dataset = load_dataset(ident, tmp_path)
    assert dataset.trajectories["mask"].sum() >= 400 and dataset.trajectories["action"].abs().max() <= 1.0


def test_of_several_runs_the_one_whose_expert_records_the_strongest_data_ships(shipped, shipped_sac, tmp_path):
    """PPO's run against SAC's, as issue 15 chooses: each expert is rolled out as its expert dataset would be, and
    the return the choice reads is the return the shipped expert's data then record."""
    runs = [shipped["run_dir"], shipped_sac["run_dir"]]
    record = export_policies(runs, "hopper", 11, 3, "test", tmp_path / "policies", choose_steps=300)
    candidates = record["chosen_from"]["runs"]
    assert [(c["run_dir"], c["algorithm"]) for c in candidates] == [(str(runs[0]), "ppo"), (str(runs[1]), "sac")]
    best = max(candidates, key=lambda candidate: candidate["expert_data_return"])
    assert candidates[0]["expert_data_return"] != candidates[1]["expert_data_return"]
    assert record["training"]["name"] == best["algorithm"] and record["chosen_from"]["steps"] == 300
    final = checkpoint.load(Path(best["run_dir"]) / "checkpoint.pt")
    trained = OmegaConf.to_container(OmegaConf.create(final["config"]).policy)
    chosen = acting_policy(trained)[1](final["learner"]["policy"])  # PPO's: its actor's
    expert = checkpoint.load(tmp_path / "policies" / "hopper" / "expert.pt")["policy"]
    assert chosen.keys() == expert.keys() and all(torch.equal(chosen[key], expert[key]) for key in chosen)
    ident = make_dataset(HOPPER, "expert", 300, str(tmp_path / "data"), version=1, policy_root=tmp_path / "policies")
    returns = load_dataset(ident, tmp_path / "data").trajectories["return"]
    assert len(returns) == best["episodes"]
    assert returns.mean().item() == best["expert_data_return"]


def test_choosing_among_runs_refuses_bad_settings_in_one_sentence(shipped, tmp_path, capsys) -> None:
    policies = ["data", "policies", "env=hopper", "version=1"]
    assert main([*policies, "run_dir=[]"]) == 2
    assert "run_dir=[] names no run; pass run_dir=<run> or run_dir=[<run>,<run>,...]." in capsys.readouterr().err
    assert main([*policies, f"run_dir=[{shipped['run_dir']},{tmp_path}]"]) == 2  # each run is checked first
    assert f"{tmp_path} is not a finished rlsft run (it has no checkpoint.pt" in capsys.readouterr().err
    assert main([*policies, f"run_dir=[{shipped['run_dir']}]", "choose_steps=0"]) == 2
    assert "choose_steps=0 must be positive" in capsys.readouterr().err


def test_a_version_without_shipped_policies_is_one_sentence(tmp_path, capsys) -> None:
    assert main(["data", "make", "env=ant", "kind=medium", "version=1", f"data_dir={tmp_path}"]) == 2
    assert "No behaviour policies ship in v1 for env 'ant'" in capsys.readouterr().err
    assert main(["data", "make", "env=hopper", "kind=medium", "version=7", f"data_dir={tmp_path}"]) == 2
    assert "version=7 is not a dataset version rlsft makes; choose one of [0, 1, 2, 3, 4]" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("setting", "sentence"),
    [
        ("steps=-5", "steps=-5, num_envs=8, seed=0: steps (null: 1M) and num_envs must be positive"),
        ("num_envs=0", "steps=300, num_envs=0, seed=0: steps (null: 1M) and num_envs must be positive"),
        ("seed=-1", "seed=-1: steps (null: 1M) and num_envs must be positive and seed not negative"),
        ("steps=abc", "steps='abc' should be an integer or null; fix the override."),
        ("num_envs=2.5", "num_envs=2.5 should be an integer; fix the override."),
    ],
)
def test_a_bad_recording_setting_is_one_sentence_and_writes_nothing(setting, sentence, tmp_path, capsys) -> None:
    argv = ["data", "make", "env=hopper", "kind=random", "steps=300", setting, f"data_dir={tmp_path}"]
    assert main(argv) == 2  # steps=-5 wrote an empty dataset; num_envs=0 and steps=abc were tracebacks
    error = capsys.readouterr().err
    assert sentence in error and "Traceback" not in error
    assert list(tmp_path.iterdir()) == []


def test_policies_need_a_finished_run_of_the_env(shipped, tmp_path, capsys) -> None:
    """A missing, unfinished or other env's run is one sentence, and the policies shipped before stay."""
    assert main(["data", "policies", "env=hopper", "version=1"]) == 2
    assert "rlsft data policies needs the run to ship the policies of; pass run_dir=" in capsys.readouterr().err
    assert main(["data", "policies", "env=hopper", "version=1", f"run_dir={tmp_path}"]) == 2
    assert f"{tmp_path} is not a finished rlsft run (it has no checkpoint.pt" in capsys.readouterr().err
    for setting, sentence in [("replay_snapshots=abc", "replay_snapshots='abc' should be an integer"),
                              ("replay_snapshots=1", "replay_snapshots=1 must be 2 or more")]:  # fmt: skip
        assert main(["data", "policies", "env=hopper", "version=1", f"run_dir={tmp_path}", setting]) == 2
        assert sentence in capsys.readouterr().err
    root = tmp_path / "policies"
    write_policies(root / "walker2d", {"expert": {"w": torch.ones(2)}}, {"made": "before"})
    with pytest.raises(RLSFTError, match="was trained in env 'hopper', not 'walker2d'"):
        export_policies(shipped["run_dir"], "walker2d", 17, 6, "test", root, replace=True)
    assert json.loads((root / "walker2d" / "record.json").read_text()) == {"made": "before"}


def test_shipped_policies_are_replaced_only_when_asked(shipped, tmp_path, monkeypatch, capsys) -> None:
    """A version's datasets are made from its policies: shipping a run over them needs replace=true. The
    package's policy folder is a temporary one here, so that no test can write over the shipped policies."""
    monkeypatch.setattr(making, "POLICY_DIR", tmp_path)
    write_policies(policy_folder(0) / "hopper", {"expert": {"w": torch.ones(2)}}, {"made": "before"})
    argv = ["data", "policies", "env=hopper", "version=0", f"run_dir={shipped['run_dir']}"]
    assert main(argv) == 2
    assert "hopper holds the hopper policies that this version's datasets are made from; pass replace=true" in (
        capsys.readouterr().err
    )
    assert json.loads((tmp_path / "v0" / "hopper" / "record.json").read_text()) == {"made": "before"}
    assert main([*argv, "replace=maybe"]) == 2 and "replace='maybe'" in capsys.readouterr().err
    assert main([*argv, "replace=true"]) == 0
    record = json.loads((tmp_path / "v0" / "hopper" / "record.json").read_text())
    assert record["command"] == f"rlsft data policies {' '.join(argv[2:])} replace=true"


def test_a_failed_write_keeps_the_policies_it_would_replace(tmp_path) -> None:
    folder = tmp_path / "hopper"
    write_policies(folder, {"expert": {"w": torch.ones(2)}}, {"made": "before"})
    with pytest.raises(Exception):  # noqa: B017 -- any failure mid-write (here pickling a lambda)
        write_policies(folder, {"expert": {"w": torch.zeros(2)}, "medium": {"w": lambda: 0}}, {"made": "after"})
    assert json.loads((folder / "record.json").read_text()) == {"made": "before"}
    assert torch.equal(checkpoint.load(folder / "expert.pt")["policy"]["w"], torch.ones(2))
    write_policies(folder, {"expert": {"w": torch.zeros(2)}}, {"made": "after"})  # the stale half-write is cleared
    assert json.loads((folder / "record.json").read_text()) == {"made": "after"}
    assert sorted(path.name for path in tmp_path.iterdir()) == ["hopper"]


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


SHIPPED = [(v, record.parent.name) for v in VERSIONS for record in sorted(policy_folder(v).glob("*/record.json"))]


@pytest.mark.parametrize(("version", "env_name"), SHIPPED, ids=[f"v{v}-{e}" for v, e in SHIPPED])
def test_every_shipped_policy_loads_and_makes_its_datasets(version, env_name, tmp_path) -> None:
    """What the package ships for each dataset version: every policy its record names loads, and the
    kinds that read them make data within the action space."""
    root = policy_folder(version)
    for name in ("expert", "medium", *behaviour_record(env_name, root)["replay"]):
        load_behaviour(env_name, name, root)
    env = ControlEnv.from_config(compose_config("data", [f"env={env_name}"]).env)
    for kind in ("medium-expert", "medium-replay"):
        ident = make_dataset(env, kind, 300, str(tmp_path), num_envs=2, version=version)
        assert ident == f"rlsft/{env_name}/{kind}-s300-v{version}"
        assert load_dataset(ident, tmp_path).trajectories["action"].abs().max() <= 1.0


def test_at_most_replay_snapshots_ship_evenly_spaced_over_the_same_frames(shipped, tmp_path) -> None:
    every = shipped["record"]
    assert len(every["replay"]) > 3  # the tiny run reaches medium after several snapshots
    thinned = export_policies(shipped["run_dir"], "hopper", 11, 3, "test", tmp_path, replay_snapshots=3)
    assert thinned["replay"] == ["replay/000", "replay/001", "replay/002"]
    assert thinned["medium_step"] == every["medium_step"]
    assert abs(sum(thinned["replay_frames"]) - sum(every["replay_frames"])) <= 2  # the same frames, rounded
    first = checkpoint.load(tmp_path / "hopper" / "replay" / "000.pt")["policy"]
    assert all(
        torch.equal(first[k], v)
        for k, v in load_behaviour("hopper", "replay/000", shipped["root"]).state_dict().items()
    )
    last = checkpoint.load(tmp_path / "hopper" / "replay" / "002.pt")["policy"]
    medium = checkpoint.load(tmp_path / "hopper" / "medium.pt")["policy"]
    assert all(torch.equal(last[k], medium[k]) for k in medium)  # the last is medium itself


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
