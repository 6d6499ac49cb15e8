"""Datasets: Minari and D4RL round trips, episode splits, curation, quality sampling."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium
import h5py
import numpy as np
import pytest
import torch
from conftest import write_d4rl_file
from minari import EpisodeData, create_dataset_from_buffers
from minari.data_collector.episode_buffer import EpisodeBuffer
from tensordict import TensorDict

from rlsft.cache_key import cache_key
from rlsft.cli import main
from rlsft.data import curate, load_dataset
from rlsft.data.making import record_episodes
from rlsft.data.minari_io import find_minari, write_minari
from rlsft.data.policy_export import export_policies
from rlsft.data.trajectories import episode_ends, flat_to_trajectories
from rlsft.errors import RLSFTError
from rlsft.experiments.control import check_dataset_fits_env, env_name
from rlsft.sources.trajectories import trajectory_buffer


def test_minari_and_d4rl_files_load_to_the_same_tensordict(hopper_minari, hopper_episodes, data_dir, tmp_path):
    from_minari = load_dataset(hopper_minari, data_dir)
    from_d4rl = load_dataset(str(write_d4rl_file(tmp_path / "hopper.hdf5", hopper_episodes)), data_dir)
    assert from_minari.trajectories.batch_size == torch.Size([len(hopper_episodes)])
    assert (from_minari.trajectories == from_d4rl.trajectories).all()
    assert from_minari.fingerprint == from_d4rl.fingerprint
    lengths = from_minari.trajectories["mask"].sum(-1)
    assert lengths.tolist() == [len(ep.actions) for ep in hopper_episodes]
    expected_returns = torch.tensor([ep.rewards.sum() for ep in hopper_episodes], dtype=torch.float32)
    torch.testing.assert_close(from_minari.trajectories["return"], expected_returns)
    first = hopper_episodes[0]
    torch.testing.assert_close(
        from_minari.trajectories["observation"][0, : len(first.actions)],
        torch.as_tensor(first.observations[:-1], dtype=torch.float32),
    )
    assert (from_minari.ref_min_score, from_minari.ref_max_score) == (-20.272305, 3234.3)
    assert from_minari.env_id == "Hopper-v5"


def test_minari_dataset_loads_by_folder_too(hopper_minari, data_dir):
    by_path = load_dataset(str(data_dir / "minari" / hopper_minari), "/nonexistent")
    assert (by_path.trajectories == load_dataset(hopper_minari, data_dir).trajectories).all()


def test_cache_keys_stay_what_the_caches_on_disk_were_named_with():
    """blake2b made with the digest size (reference.py 8 bytes, the dataset fingerprint 12) and sha256 cut short
    (text completions, 6): a change here would orphan every cached dataset and pi_ref."""
    assert cache_key(["rec", b"ipe"], digest_size=8) == "e51e2b9d730f7a81"
    assert cache_key([b"a", b"b"], digest_size=12) == "2048fd15436876b1b96211b1"
    assert cache_key(['{"a": 1}'], digest_size=6, algorithm="sha256") == "f9d86028c6e0"


def test_episodes_split_at_terminals_and_timeouts():
    terminated = np.array([0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0], dtype=bool)
    truncated = np.array([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    lengths = episode_ends(terminated, truncated)
    assert lengths.tolist() == [3, 2, 4, 2]  # the trailing 2 steps end neither way and are kept
    steps = len(terminated)
    trajectories = flat_to_trajectories(
        observation=np.arange(steps, dtype=np.float32)[:, None].repeat(3, 1),
        action=np.zeros((steps, 2)),
        reward=np.ones(steps),
        terminated=terminated,
        truncated=truncated,
        lengths=lengths,
        source="hand-made",
    )
    assert trajectories["mask"].tolist() == [
        [True, True, True, False],
        [True, True, False, False],
        [True, True, True, True],
        [True, True, False, False],
    ]
    assert trajectories["observation"][2, :, 0].tolist() == [5, 6, 7, 8]
    assert trajectories["return"].tolist() == [3, 2, 4, 2]
    assert trajectories["next", "terminated"][:, :, 0].sum(-1).tolist() == [1, 0, 1, 0]
    assert trajectories["next", "truncated"][1, 1, 0] and trajectories["next", "done"][1, 1, 0]


def returns_only(returns: list[float]) -> TensorDict:
    return TensorDict({"return": torch.tensor(returns), "quality": torch.zeros(len(returns))}, [len(returns)])


def test_quantile_curation_counts_thresholds_passed():
    data = returns_only([float(r) for r in range(100)])  # returns 0..99
    curated = curate(data, "quantile", [0.9, 0.95, 0.98])
    # numpy-style linear percentiles: 89.1, 94.05, 97.02
    assert curated["return"].tolist() == list(range(90, 100))
    assert curated["quality"].tolist() == [1, 1, 1, 1, 1, 2, 2, 2, 3, 3]


def test_top_k_and_threshold_curation():
    data = returns_only([5.0, 1.0, 9.0, 7.0, 3.0])
    assert sorted(curate(data, "top_k", [2])["return"].tolist()) == [7.0, 9.0]
    assert sorted(curate(data, "threshold", [4.0])["return"].tolist()) == [5.0, 7.0, 9.0]
    assert curate(data, "none", [])["quality"].tolist() == [1.0] * 5


def test_a_filter_that_keeps_nothing_is_explained():
    with pytest.raises(RLSFTError, match="keeps none of 3 trajectories"):
        curate(returns_only([1.0, 2.0, 3.0]), "threshold", [10.0])


def test_quality_sampling_is_proportional_to_quality():
    torch.manual_seed(0)
    data = TensorDict({"id": torch.arange(3), "quality": torch.tensor([1.0, 2.0, 3.0])}, [3])
    buffer = trajectory_buffer(data, "quality", batch_size=60_000, device=torch.device("cpu"))
    frequencies = torch.bincount(buffer.sample()["id"], minlength=3) / 60_000
    torch.testing.assert_close(frequencies, torch.tensor([1 / 6, 2 / 6, 3 / 6]), atol=0.01, rtol=0)


def test_uniform_sampling_returns_whole_trajectories(hopper_minari, data_dir):
    dataset = load_dataset(hopper_minari, data_dir)
    batch = trajectory_buffer(dataset.trajectories, "uniform", 8, torch.device("cpu")).sample()
    assert batch.batch_size == torch.Size([8])
    assert batch["observation"].shape[1:] == dataset.trajectories["observation"].shape[1:]
    for row in batch:
        original = dataset.trajectories[int(row["episode"])]
        assert (row.exclude("index") == original).all()


def write_hdf5(path: Path, **arrays) -> str:
    with h5py.File(path, "w") as file:
        for key, value in arrays.items():
            file[key] = value
    return str(path)


def d4rl_arrays(steps: int) -> dict:
    return {
        "observations": np.zeros((steps, 11), np.float32),
        "actions": np.zeros((steps, 3), np.float32),
        "rewards": np.zeros(steps, np.float32),
        "terminals": np.zeros(steps, bool),
        "timeouts": np.zeros(steps, bool),
    }


def test_missing_dataset_is_explained(data_dir):
    with pytest.raises(RLSFTError, match="does not exist"):
        load_dataset("/no/such/file.hdf5", data_dir)
    with pytest.raises(RLSFTError, match="was not found"):
        load_dataset("mujoco/hopper/nothing-v0", data_dir)


def test_empty_dataset_is_explained(tmp_path):
    with pytest.raises(RLSFTError, match="holds no steps"):
        load_dataset(write_hdf5(tmp_path / "empty.hdf5", **d4rl_arrays(0)), tmp_path)


def test_nan_observations_are_explained(tmp_path):
    arrays = d4rl_arrays(10)
    arrays["observations"][4, 2] = np.nan
    with pytest.raises(RLSFTError, match=r"NaN/inf values in its observations as float32 \(first at step 4;"):
        load_dataset(write_hdf5(tmp_path / "nan.hdf5", **arrays), tmp_path)


def test_missing_keys_and_corrupt_files_are_explained(tmp_path):
    arrays = d4rl_arrays(10)
    del arrays["timeouts"]
    with pytest.raises(RLSFTError, match=r"lacks the D4RL keys \['timeouts'\]"):
        load_dataset(write_hdf5(tmp_path / "partial.hdf5", **arrays), tmp_path)
    corrupt = tmp_path / "corrupt.hdf5"
    corrupt.write_bytes(b"this is not hdf5")
    with pytest.raises(RLSFTError, match="not a readable HDF5 file"):
        load_dataset(str(corrupt), tmp_path)


def test_minari_episodes_are_read_once_then_from_a_cache_keyed_by_the_files(hopper_episodes, tmp_path):
    write_minari("test/hopper/cached-v0", hopper_episodes, "Hopper-v5", tmp_path)
    first = load_dataset("test/hopper/cached-v0", tmp_path)
    (cache,) = (tmp_path / "cache").glob("*.pt")
    steps = torch.load(cache, weights_only=True)
    steps["reward"] = steps["reward"] * 2  # a load that reads the cache sees this
    torch.save(steps, cache)
    doubled = load_dataset("test/hopper/cached-v0", tmp_path).trajectories
    torch.testing.assert_close(doubled["return"], 2 * first.trajectories["return"])

    cache.write_bytes(b"not a torch file")  # damaged: read Minari again and rewrite the cache
    assert (load_dataset("test/hopper/cached-v0", tmp_path).trajectories == first.trajectories).all()
    assert torch.equal(torch.load(cache, weights_only=True)["reward"], steps["reward"] / 2)

    data_file = tmp_path / "minari" / "test/hopper/cached-v0" / "data" / "main_data.hdf5"
    os.utime(data_file, ns=(data_file.stat().st_atime_ns, data_file.stat().st_mtime_ns + 1))  # the dataset changed
    assert (load_dataset("test/hopper/cached-v0", tmp_path).trajectories == first.trajectories).all()
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2


def cli_error(argv: list[str], capsys) -> str:
    """The one-sentence error `rlsft train` prints, after checking that it exits 2 without a traceback."""
    assert main(argv) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("rlsft: error: ") and "\n" not in message and "Traceback" not in message
    return message


def test_arrays_of_unequal_lengths_are_explained(tmp_path, tiny_train, capsys):
    arrays = d4rl_arrays(10)
    arrays["rewards"] = arrays["rewards"][:9]
    path = write_hdf5(tmp_path / "ragged.hdf5", **arrays)
    assert (
        f"{path} has arrays of unequal lengths (observations 10, actions 10, rewards 9, terminals 10, timeouts 10)"
        in cli_error(tiny_train(path, tmp_path, tmp_path / "run"), capsys)
    )


def test_two_dimensional_rewards_are_explained(tmp_path, tiny_train, capsys):
    arrays = d4rl_arrays(10)
    arrays["rewards"] = np.zeros((10, 2), np.float32)
    path = write_hdf5(tmp_path / "wide.hdf5", **arrays)
    assert "stores rewards with shape (10, 2); write it as [steps]" in cli_error(
        tiny_train(path, tmp_path, tmp_path / "run"), capsys
    )


def test_string_rewards_are_explained(tmp_path, tiny_train, capsys):
    arrays = d4rl_arrays(10)
    arrays["rewards"] = np.array([b"1.5"] * 10)
    path = write_hdf5(tmp_path / "strings.hdf5", **arrays)
    assert "stores rewards as bytes (|S3); write rewards as a float, int or bool array" in cli_error(
        tiny_train(path, tmp_path, tmp_path / "run"), capsys
    )


@pytest.mark.parametrize(
    "key, shape",
    [("observations", (10, 11, 1)), ("observations", ()), ("actions", (10, 0)), ("terminals", (10, 1, 1)),
     ("timeouts", (1, 10)), ("rewards", ())],
)  # fmt: skip
def test_arrays_of_other_shapes_are_explained(key, shape, tmp_path):
    arrays = d4rl_arrays(10)
    arrays[key] = np.zeros(shape, arrays[key].dtype)
    with pytest.raises(RLSFTError, match=rf"stores {key} with shape {re.escape(str(shape))}; write it as \["):
        load_dataset(write_hdf5(tmp_path / "shaped.hdf5", **arrays), tmp_path)


@pytest.mark.parametrize(
    "values, kind",
    [(np.array(["1.0"] * 10, dtype=h5py.string_dtype()), "Python objects"),
     (np.zeros(10, dtype=[("a", "f4"), ("b", "f4")]), "compound records"),
     (np.zeros(10, np.complex64), "complex numbers")],
)  # fmt: skip
def test_values_that_are_not_real_numbers_are_explained(values, kind, tmp_path):
    arrays = d4rl_arrays(10)
    arrays["terminals"] = values
    with pytest.raises(RLSFTError, match=rf"stores terminals as {kind} "):
        load_dataset(write_hdf5(tmp_path / "typed.hdf5", **arrays), tmp_path)


def test_a_group_or_an_empty_dataspace_in_place_of_an_array_is_explained(tmp_path):
    arrays = d4rl_arrays(10)
    arrays["actions"] = h5py.Empty("f")
    with pytest.raises(RLSFTError, match="holds no array under 'actions'"):
        load_dataset(write_hdf5(tmp_path / "empty.hdf5", **arrays), tmp_path)
    del arrays["actions"]
    path = write_hdf5(tmp_path / "group.hdf5", **arrays)
    with h5py.File(path, "a") as file:
        file.create_group("actions")
    with pytest.raises(RLSFTError, match="holds no array under 'actions'"):
        load_dataset(path, tmp_path)


def test_a_trailing_singleton_dim_is_squeezed_and_1d_observations_are_of_dim_1(tmp_path, tiny_train, capsys):
    arrays = d4rl_arrays(10)
    arrays["rewards"] = np.arange(10, dtype=np.float32)
    arrays["terminals"][4] = True
    flat = load_dataset(write_hdf5(tmp_path / "flat.hdf5", **arrays), tmp_path).trajectories
    columns = {key: value[:, None] if value.ndim == 1 else value for key, value in arrays.items()}
    assert (load_dataset(write_hdf5(tmp_path / "columns.hdf5", **columns), tmp_path).trajectories == flat).all()
    assert flat["return"].tolist() == [10, 35]

    arrays["observations"] = np.arange(10, dtype=np.float32)  # a scalar observation per step
    path = write_hdf5(tmp_path / "scalar.hdf5", **arrays)
    assert load_dataset(path, tmp_path).trajectories["observation"][1, :, 0].tolist() == [5, 6, 7, 8, 9]
    assert "has observations of dim 1 and actions of dim 3, but Hopper-v5 has 11 and 3" in cli_error(
        tiny_train(path, tmp_path, tmp_path / "run"), capsys
    )


def test_flags_other_than_0_or_1_are_explained(tmp_path):
    arrays = d4rl_arrays(10)
    arrays["terminals"] = np.zeros(10, np.float32)
    arrays["terminals"][4] = 1.0  # float flags as some exporters write them: fine
    episodes = load_dataset(write_hdf5(tmp_path / "float.hdf5", **arrays), tmp_path).trajectories
    assert episodes["mask"].sum(-1).tolist() == [5, 5]
    arrays["timeouts"] = np.zeros(10)
    arrays["timeouts"][3] = np.nan  # read as true by a plain cast to bool
    with pytest.raises(RLSFTError, match=r"has timeouts other than 0 or 1 \(first at step 3: nan\)"):
        load_dataset(write_hdf5(tmp_path / "nan.hdf5", **arrays), tmp_path)


@pytest.mark.parametrize("key", ["observations", "rewards"])
def test_float64_values_beyond_float32_are_refused_not_trained_on(key, tmp_path, tiny_train, capsys):
    arrays = d4rl_arrays(10)
    arrays[key] = arrays[key].astype(np.float64)
    arrays[key][3] = 1e300  # finite in the file, inf once cast to float32 for training
    path = write_hdf5(tmp_path / "huge.hdf5", **arrays)
    assert (
        f"1{'1' if key == 'observations' else ''} NaN/inf values in its {key} as float32 (first at step 3;"
        in cli_error(tiny_train(path, tmp_path, tmp_path / "run"), capsys)
    )


def test_a_return_beyond_float32_is_refused(tmp_path):
    arrays = d4rl_arrays(10)
    arrays["terminals"][4] = True
    arrays["rewards"][6:8] = 3e38  # each finite as float32, their sum is not
    with pytest.raises(RLSFTError, match=r"an episode \(number 1, from step 5\) whose return, the sum of its rewards,"):
        load_dataset(write_hdf5(tmp_path / "return.hdf5", **arrays), tmp_path)


def test_minari_dict_observations_are_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    box = gymnasium.spaces.Box(-1, 1, (3,))
    episode = EpisodeBuffer(
        observations={"position": np.zeros((6, 2), np.float32), "goal": np.zeros((6, 2), np.float32)},
        actions=np.zeros((5, 3), np.float32),
        rewards=[0.0] * 5,
        terminations=[False] * 5,
        truncations=[False] * 4 + [True],
        infos={},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # minari's advice on metadata this dataset lacks
        create_dataset_from_buffers(
            "test/maze/dict-v0", [episode], observation_space=gymnasium.spaces.Dict(position=box, goal=box),
            action_space=box, algorithm_name="test",
        )  # fmt: skip
    with pytest.raises(RLSFTError, match="stores observations as dict; rlsft trains on numeric array"):
        load_dataset("test/maze/dict-v0", tmp_path)


def test_env_names_ignore_case_version_namespace_and_d4rl_dataset_words():
    ids = ["Hopper-v5", "Hopper-v4", "hopper", "mujoco/Hopper-v5", "hopper-medium-replay-v2", "HOPPER-expert-v0"]
    assert {env_name(env_id) for env_id in ids} == {"hopper"}
    assert env_name("halfcheetah-medium-v2") == env_name("HalfCheetah-v5") != env_name("Walker2d-v5")


def record_walker2d(num_episodes: int, max_steps: int = 20) -> list[EpisodeData]:
    """Random-action Walker2d-v5 episodes: 17-dim observations and 6-dim actions, as HalfCheetah's."""
    env = gymnasium.make("Walker2d-v5")
    episodes = []
    for index in range(num_episodes):
        observations, actions, rewards, terminations = [env.reset(seed=index)[0]], [], [], []
        for _ in range(max_steps):
            action = env.action_space.sample()
            observation, reward, terminated, _, _ = env.step(action)
            observations.append(observation)
            actions.append(action)
            rewards.append(reward)
            terminations.append(terminated)
            if terminated:
                break
        truncations = [False] * (len(actions) - 1) + [not terminations[-1]]
        episodes.append(
            EpisodeData(
                id=index, observations=np.array(observations), actions=np.array(actions), rewards=np.array(rewards),
                terminations=np.array(terminations), truncations=np.array(truncations), infos={},
            )
        )  # fmt: skip
    env.close()
    return episodes


def test_data_from_another_env_of_the_same_dims_is_refused(tmp_path, tiny_train, capsys):
    write_minari("test/walker2d/random-v0", record_walker2d(4), "Walker2d-v5", tmp_path)
    message = cli_error(
        tiny_train("test/walker2d/random-v0", tmp_path, tmp_path / "cheetah", "env=halfcheetah"), capsys
    )
    assert (
        "was recorded in Walker2d-v5 but this run's env is HalfCheetah-v5; pass the dataset's env (env=...)" in message
    )
    assert main(tiny_train("test/walker2d/random-v0", tmp_path, tmp_path / "walker", "env=walker2d")) == 0
    assert math.isfinite(json.loads((tmp_path / "walker" / "summary.json").read_text())["normalized_score"])


@pytest.mark.parametrize(
    "attr, recorded, fits",
    [("env_id", "Hopper-v4", True), ("env", b"hopper-medium-v2", True), ("env_id", "Walker2d-v5", False)],
)
def test_a_d4rl_files_env_attribute_is_checked(attr, recorded, fits, tmp_path):
    path = write_hdf5(tmp_path / "tagged.hdf5", **d4rl_arrays(10))
    with h5py.File(path, "a") as file:
        file.attrs[attr] = recorded
    dataset = load_dataset(path, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a dataset that records its env is checked, not warned about
        if fits:
            check_dataset_fits_env(dataset, "Hopper-v5", 11, 3)
        else:
            with pytest.raises(RLSFTError, match="was recorded in Walker2d-v5 but this run's env is Hopper-v5"):
                check_dataset_fits_env(dataset, "Hopper-v5", 11, 3)


def test_an_env_attribute_that_is_not_a_string_is_explained(tmp_path):
    path = write_hdf5(tmp_path / "numbered.hdf5", **d4rl_arrays(10))
    with h5py.File(path, "a") as file:
        file.attrs["env_id"] = 3
    with pytest.raises(RLSFTError, match="has a env_id attribute of"):
        load_dataset(path, tmp_path)


def test_a_d4rl_file_without_an_env_warns_once_that_it_is_unchecked(tmp_path, tiny_train):
    path = write_hdf5(tmp_path / "anonymous.hdf5", **d4rl_arrays(10))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # count every warning, repeats included
        assert main(tiny_train(path, tmp_path, tmp_path / "run")) == 0
    unchecked = [str(warning.message) for warning in caught if "does not record the env" in str(warning.message)]
    assert len(unchecked) == 1 and path in unchecked[0] and "Hopper-v5" in unchecked[0]


def test_a_data_spec_that_is_not_a_string_is_explained(tmp_path):
    with pytest.raises(RLSFTError, match="data=7 is not a dataset name"):
        load_dataset(7, tmp_path)


def test_minari_reference_scores_that_cannot_normalise_are_explained(hopper_episodes, tmp_path):
    write_minari(
        "test/hopper/flat-v0", hopper_episodes[:3], "Hopper-v5", tmp_path, ref_min_score=5.0, ref_max_score=5.0
    )
    with pytest.raises(RLSFTError, match=r"records ref_min_score=5.0 and ref_max_score=5.0, which cannot normalise"):
        load_dataset("test/hopper/flat-v0", tmp_path)  # else every normalised score is inf or NaN


@pytest.mark.parametrize("by, levels", [("quantile", []), ("quantile", [float("nan")]), ("top_k", [float("nan")])])
def test_curation_without_finite_levels_is_explained(by, levels):
    with pytest.raises(RLSFTError, match="needs one or more finite levels"):
        curate(returns_only([1.0, 2.0, 3.0]), by, levels)


def test_a_top_k_count_beyond_the_dataset_keeps_everything():
    assert sorted(curate(returns_only([5.0, 1.0, 9.0]), "top_k", [1e30])["return"].tolist()) == [1.0, 5.0, 9.0]


def test_top_k_counts_that_are_not_whole_numbers_of_one_or_more_are_explained():
    for levels in ([0.1], [0], [-5], [2.5], [3, 0]):  # each kept the single best trajectory, silently
        with pytest.raises(RLSFTError, match=r"curation\.by=top_k counts .* must be whole numbers, 1 or more"):
            curate(returns_only([1.0, 2.0, 3.0]), "top_k", levels)


@pytest.mark.parametrize("link", ["soft", "external"])
def test_a_dangling_link_in_place_of_an_array_is_explained(link, tmp_path):
    path = write_hdf5(tmp_path / "linked.hdf5", **{k: v for k, v in d4rl_arrays(10).items() if k != "rewards"})
    with h5py.File(path, "a") as file:
        file["rewards"] = h5py.SoftLink("/nowhere") if link == "soft" else h5py.ExternalLink("gone.hdf5", "/rewards")
    with pytest.raises(RLSFTError, match=r"links 'rewards' to an object that cannot be opened \(Unable to .*\); store"):
        load_dataset(path, tmp_path)


LENGTHS = r"holds \d+ observations, \d+ actions, \d+ rewards, \d+ terminations and \d+ truncations, not T \+ 1"


@pytest.mark.parametrize(
    "field, change, sentence",
    [("rewards", lambda v: v[:-1], LENGTHS),  # the next episode's extra reward made up the total
     ("terminations", lambda v: v[:-1], LENGTHS),
     ("actions", lambda v: np.zeros((len(v), 4), np.float32), r"holds actions of shape \(4,\) a step but episode 0"),
     ("observations", lambda v: v[..., None], r"holds observations of shape \(11, 1\) a step but episode 0")],
    ids=["short-rewards", "short-terminations", "wider-actions", "observations-of-another-rank"],
)  # fmt: skip
def test_minari_episodes_that_do_not_fit_together_are_explained(field, change, sentence, hopper_episodes, tmp_path):
    """One episode's arrays checked against its own length and the first episode's widths: a reward short here
    and one over in the next summed to the right total and shifted the returns across the boundary."""
    episodes = [*hopper_episodes[:3]]
    episodes[1] = dataclasses.replace(episodes[1], **{field: change(getattr(episodes[1], field))})
    if field in ("rewards", "terminations"):
        extra = np.concatenate([getattr(episodes[2], field), getattr(episodes[2], field)[-1:]])
        episodes[2] = dataclasses.replace(episodes[2], **{field: extra})
    write_minari("test/hopper/mixed-v0", episodes, "Hopper-v5", tmp_path)
    with pytest.raises(RLSFTError, match=rf"Dataset test/hopper/mixed-v0's episode 1 {sentence}"):
        load_dataset("test/hopper/mixed-v0", tmp_path)


def test_an_interrupted_minari_write_leaves_no_dataset_that_looks_made(hopper_episodes, tmp_path):
    """Minari writes metadata.json before the episodes, and a folder holding one is taken for a made dataset:
    a write cut short (here by rewards HDF5 cannot store, after two episodes were written) must leave none."""
    unstorable = dataclasses.replace(hopper_episodes[2], rewards=np.array([None] * len(hopper_episodes[2].actions)))
    with pytest.raises(TypeError):
        write_minari("test/hopper/cut-v0", [*hopper_episodes[:2], unstorable], "Hopper-v5", tmp_path)
    assert find_minari("test/hopper/cut-v0", tmp_path) is None
    namespace = tmp_path / "minari" / "test" / "hopper"
    (namespace / ".cut-v0.writing" / "test").mkdir(parents=True)  # as a write killed outright leaves it
    write_minari("test/hopper/cut-v0", hopper_episodes[:3], "Hopper-v5", tmp_path)
    assert load_dataset("test/hopper/cut-v0", tmp_path).trajectories.batch_size == torch.Size([3])
    assert sorted(path.name for path in namespace.iterdir()) == ["cut-v0", "namespace_metadata.json"]
    with pytest.raises(RLSFTError, match=r"Minari dataset test/hopper/cut-v0 exists already at .*; delete it"):
        write_minari("test/hopper/cut-v0", hopper_episodes[:3], "Hopper-v5", tmp_path)


def test_two_processes_making_one_dataset_both_end_with_it(tmp_path):
    """A sweep's runs on a fresh data_dir make the dataset they share at once: one makes it, the others wait and
    use it (the second was a traceback from Minari: the dataset already exists)."""
    argv = ["data", "make", "env=hopper", "kind=random", "steps=2000", f"data_dir={tmp_path}"]
    command = [sys.executable, "-c", "import sys; from rlsft.cli import main; sys.exit(main(sys.argv[1:]))", *argv]
    makers = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for maker in makers:
        stdout, stderr = maker.communicate(timeout=600)
        assert maker.returncode == 0, stderr
        assert json.loads(stdout)["dataset"] == "rlsft/hopper/random-s2000-v0"
    assert load_dataset("rlsft/hopper/random-s2000-v0", tmp_path).trajectories["mask"].sum() >= 2000


def test_policies_are_shipped_from_online_runs_only(hopper_minari, data_dir, tiny_train, tmp_path, capsys):
    """A BC run with snapshots logs no frames or training episodes in its train.csv: that was a KeyError."""
    run_dir = tmp_path / "bc"
    assert main(tiny_train(hopper_minari, data_dir, run_dir, "evaluation.snapshots=true", "evaluation.every=1")) == 0
    sentence = f"{run_dir} is a bc run, whose train.csv logs no frames or no episode_return of training episodes;"
    with pytest.raises(RLSFTError, match=re.escape(sentence)):
        export_policies(run_dir, "hopper", 11, 3, "test", tmp_path / "policies")
    assert not (tmp_path / "policies").exists()
    # refused before the policies the version ships for hopper are considered (replacing them needs replace=true)
    assert sentence in cli_error(["data", "policies", "env=hopper", "version=0", f"run_dir={run_dir}"], capsys)


def test_steps_is_a_minimum_rounded_up_to_whole_episodes_of_the_parallel_envs():
    """As the README and make_dataset document: Pendulum's episodes all last 200 steps, so 4 envs end 4 at once."""
    rng = np.random.default_rng(0)
    for steps, recorded in [(1, 800), (800, 800), (801, 1600)]:
        episodes = record_episodes(lambda obs: rng.uniform(-2, 2, (len(obs), 1)), "Pendulum-v1", steps, 4, seed=0)
        assert sum(len(episode.actions) for episode in episodes) == recorded
