"""D4RL-format HDF5 files, read with h5py (no d4rl import: it needs mujoco-py and old gym)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from rlsft.data.trajectories import TrajectoryDataset, flat_to_trajectories
from rlsft.errors import RLSFTError, reason

# flat_to_trajectories' field -> the D4RL key that holds it
D4RL_KEYS = {
    "observation": "observations",
    "action": "actions",
    "reward": "rewards",
    "terminated": "terminals",
    "truncated": "timeouts",
}
ENV_ATTRS = ("env_id", "env")  # where a D4RL-layout file may record its env; D4RL's own files record none


def read_d4rl_hdf5(path: Path) -> TrajectoryDataset:
    """Load a D4RL v2 file; an episode ends wherever `terminals` or `timeouts` is true."""
    try:
        with h5py.File(path, "r") as file:
            missing = [key for key in D4RL_KEYS.values() if key not in file]
            if missing:
                raise RLSFTError(f"{path} lacks the D4RL keys {missing}; a D4RL file holds {list(D4RL_KEYS.values())}.")
            arrays = {field: read_array(file, key, path) for field, key in D4RL_KEYS.items()}
            env_id = recorded_env(file, path)
    except OSError as error:
        raise RLSFTError(
            f"{path} is not a readable HDF5 file ({reason(error)}); re-download or re-export it."
        ) from error
    return TrajectoryDataset(
        trajectories=flat_to_trajectories(**arrays, lengths=None, source=str(path), keys=D4RL_KEYS),
        name=path.stem,
        env_id=env_id,
        source=str(path),
    )


def read_array(file: h5py.File, key: str, path: Path) -> np.ndarray:
    """The array stored under `key`; a dangling link, a group, an empty dataspace or an unreadable type is refused."""
    try:
        item = file[key]
    except KeyError as error:  # h5py's error for a soft link to nothing or an external link to a missing file
        raise RLSFTError(
            f"{path} links {key!r} to an object that cannot be opened ({error.args[0]}); store {key} in the file"
            " itself or restore what the link points to."
        ) from error
    if not isinstance(item, h5py.Dataset) or item.shape is None:  # np.asarray would turn a group into []
        raise RLSFTError(f"{path} holds no array under {key!r}; store {key} as an HDF5 dataset of numbers.")
    try:
        return np.asarray(item[()])
    except (TypeError, ValueError) as error:  # HDF5 types numpy has no match for
        raise RLSFTError(
            f"{path} stores {key} in a type that cannot be read ({reason(error)}); write {key} as a float array."
        ) from error


def recorded_env(file: h5py.File, path: Path) -> str | None:
    """The env id the file records in an `env_id` or `env` attribute, or None."""
    for attr in ENV_ATTRS:
        value = file.attrs.get(attr)
        if isinstance(value, bytes | np.bytes_):  # h5py returns fixed-length string attributes as bytes
            value = value.decode("utf-8", errors="replace")
        if isinstance(value, str) and value.strip():
            return value.strip()
        if value is not None and not isinstance(value, str):
            raise RLSFTError(
                f"{path} has a {attr} attribute of {value!r}, not an env id; set it to one like 'Hopper-v5' or"
                " delete it."
            )
    return None
