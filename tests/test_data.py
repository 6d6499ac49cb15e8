"""Datasets: Minari and D4RL round trips, episode splits, curation, quality sampling."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from conftest import write_d4rl_file
from tensordict import TensorDict

from rlsft.data import curate, load_dataset, trajectory_buffer
from rlsft.data.minari_io import write_minari
from rlsft.data.trajectories import episode_ends, flat_to_trajectories
from rlsft.errors import RLSFTError


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
    with pytest.raises(RLSFTError, match=r"NaN/inf values in its observations \(first at step 4\)"):
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
