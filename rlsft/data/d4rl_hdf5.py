"""D4RL-format HDF5 files, read with h5py (no d4rl import: it needs mujoco-py and old gym)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from rlsft.data.trajectories import TrajectoryDataset, episode_ends, flat_to_trajectories
from rlsft.errors import RLSFTError, reason

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")


def read_d4rl_hdf5(path: Path) -> TrajectoryDataset:
    """Load a D4RL v2 file; an episode ends wherever `terminals` or `timeouts` is true."""
    try:
        with h5py.File(path, "r") as file:
            missing = [key for key in REQUIRED_KEYS if key not in file]
            if missing:
                raise RLSFTError(f"{path} lacks the D4RL keys {missing}; a D4RL file holds {list(REQUIRED_KEYS)}.")
            arrays = {key: np.asarray(file[key]) for key in REQUIRED_KEYS}
            env_id = file.attrs.get("env_id")
    except OSError as error:
        raise RLSFTError(
            f"{path} is not a readable HDF5 file ({reason(error)}); re-download or re-export it."
        ) from error
    terminated = arrays["terminals"].astype(bool)
    truncated = arrays["timeouts"].astype(bool) & ~terminated
    return TrajectoryDataset(
        trajectories=flat_to_trajectories(
            observation=arrays["observations"],
            action=arrays["actions"],
            reward=arrays["rewards"],
            terminated=terminated,
            truncated=truncated,
            lengths=episode_ends(terminated, truncated),
            source=str(path),
        ),
        name=path.stem,
        env_id=str(env_id) if env_id is not None else None,
    )
