"""Minari datasets: read any local one into trajectories, and write rlsft's own in that format."""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from minari import EpisodeData, MinariDataset, create_dataset_from_buffers
from minari.data_collector.episode_buffer import EpisodeBuffer

from rlsft import checkpoint
from rlsft.cache_key import cache_key
from rlsft.data.trajectories import TrajectoryDataset, flat_to_trajectories
from rlsft.errors import RLSFTError, reason

STEP_KEYS = ("observation", "action", "reward", "terminated", "truncated", "lengths")  # a cache file's entries
# flat_to_trajectories' field -> the EpisodeData attribute that holds it
MINARI_KEYS = {
    "observation": "observations",
    "action": "actions",
    "reward": "rewards",
    "terminated": "terminations",
    "truncated": "truncations",
}


def minari_roots(data_dir: str | Path) -> list[Path]:
    """Where a dataset id is looked up: rlsft's data dir first, then Minari's own root."""
    default = os.environ.get("MINARI_DATASETS_PATH", str(Path.home() / ".minari" / "datasets"))
    return [Path(data_dir).expanduser() / "minari", Path(default).expanduser()]


def find_minari(spec: str, data_dir: str | Path) -> Path | None:
    """The `data/` folder of a Minari dataset given by id or by path, or None."""
    candidates = [Path(spec).expanduser()] + [root / spec for root in minari_roots(data_dir)]
    for candidate in candidates:
        for folder in (candidate / "data", candidate):
            if (folder / "metadata.json").is_file():
                return folder
    return None


def read_minari(folder: Path, name: str, cache_dir: Path) -> TrajectoryDataset:
    """Load every episode of the Minari dataset stored in `folder` (its `data/` directory).

    Minari stores one HDF5 group per episode, which takes about 90 s to read for a 1M-step
    random dataset's 45k episodes. The episodes' steps are therefore cached as flat tensors
    under `cache_dir` after the first read, keyed by the dataset's files, their sizes and
    modification times; a cache that cannot be read or written is passed over.
    """
    try:
        dataset = MinariDataset(folder)
    except Exception as error:  # minari raises bare ValueError/OSError/KeyError for bad files
        raise RLSFTError(
            f"Minari dataset {name} at {folder} cannot be read ({reason(error)}); recreate it or point data= elsewhere."
        ) from error
    readable = name.strip("/").replace("/", "-")[-80:]  # an id, or the tail of a path
    cache_path = cache_dir / f"{readable}-{files_key(folder)}.pt"
    steps = cached_steps(cache_path)
    if steps is None:
        steps = episode_steps(dataset, name)
        with contextlib.suppress(OSError):
            checkpoint.save_atomic(steps, cache_path)
    trajectories = flat_to_trajectories(
        **{key: value.numpy() for key, value in steps.items()}, source=name, keys=MINARI_KEYS
    )
    metadata = dataset.storage.metadata
    scores = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    usable = all(isinstance(score, int | float) and math.isfinite(score) for score in scores) and scores[0] != scores[1]
    if None not in scores and not usable:  # they divide every normalised score: equal ones give inf
        raise RLSFTError(
            f"Minari dataset {name} records ref_min_score={scores[0]!r} and ref_max_score={scores[1]!r}, which cannot"
            " normalise a score; correct or remove them in its metadata.json."
        )
    env_spec = dataset.env_spec
    return TrajectoryDataset(
        trajectories=trajectories,
        name=name,
        env_id=env_spec.id if env_spec is not None else None,
        ref_min_score=scores[0],
        ref_max_score=scores[1],
        source=str(folder),
    )


def episode_steps(dataset: MinariDataset, name: str) -> dict[str, torch.Tensor]:
    """The episodes' steps back to back, and their lengths: flat_to_trajectories' arrays.

    Only array (Box) spaces can be trained on: a Dict or Tuple observation space (the maze
    datasets) is refused, as is an episode without steps.
    """
    try:
        episodes = list(dataset.iterate_episodes())
    except Exception as error:  # minari and h5py raise bare KeyError/OSError/ValueError for damaged episodes
        raise RLSFTError(
            f"Minari dataset {name}'s episodes cannot be read ({reason(error)}); recreate it or point data= elsewhere."
        ) from error
    if not episodes:
        raise RLSFTError(f"Dataset {name} holds no episodes; point data= at a dataset with at least one episode.")
    for ep in episodes:
        for key in MINARI_KEYS.values():
            value = getattr(ep, key)
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
                kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                raise RLSFTError(
                    f"Dataset {name} stores {key} as {kind}; rlsft trains on numeric array (Box) spaces only,"
                    " so flatten a Dict or Tuple space into one array per step."
                )
        if len(ep.actions) == 0 or len(ep.observations) != len(ep.actions) + 1:
            raise RLSFTError(
                f"Dataset {name}'s episode {ep.id} holds {len(ep.observations)} observations and {len(ep.actions)}"
                " actions, not T + 1 and T with T >= 1; recreate it or drop that episode."
            )

    return steps_of(episodes)


def steps_of(episodes: list[EpisodeData]) -> dict[str, torch.Tensor]:
    """Episodes (T + 1 observations, T actions each) as their steps back to back, and their lengths."""

    def cat(get) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([np.asarray(get(ep)) for ep in episodes]))

    return {
        "observation": cat(lambda ep: ep.observations[:-1]),  # Minari stores T+1 observations
        "action": cat(lambda ep: ep.actions),
        "reward": cat(lambda ep: ep.rewards),
        "terminated": cat(lambda ep: ep.terminations),
        "truncated": cat(lambda ep: ep.truncations),
        "lengths": torch.tensor([len(ep.actions) for ep in episodes]),
    }


def files_key(folder: Path) -> str:
    """A hash of the dataset folder's files: their paths, sizes and modification times."""
    files = [(path, path.stat()) for path in sorted(folder.resolve().rglob("*")) if path.is_file()]
    return cache_key((f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n" for path, stat in files), digest_size=8)


def cached_steps(path: Path) -> dict[str, torch.Tensor] | None:
    """The steps cached at `path`, or None when there are none or the file is damaged."""
    try:
        steps = checkpoint.load(path)
    except RLSFTError:
        return None
    valid = isinstance(steps, dict) and set(steps) == set(STEP_KEYS)
    return steps if valid and all(isinstance(value, torch.Tensor) for value in steps.values()) else None


@contextlib.contextmanager
def _minari_root(root: Path) -> Iterator[None]:
    # Minari chooses where it writes from this variable only.
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def write_minari(
    dataset_id: str,
    episodes: Sequence[EpisodeData | EpisodeBuffer],
    env_id: str,
    data_dir: str | Path,
    ref_min_score: float | None = None,
    ref_max_score: float | None = None,
    description: str | None = None,
) -> Path:
    """Write episodes (T+1 observations, T actions/rewards/flags each) as a Minari dataset.

    Returns the dataset's `data/` folder, which `load_dataset` accepts as well as the id.
    """
    buffers = [
        EpisodeBuffer(
            observations=np.asarray(ep.observations),
            actions=np.asarray(ep.actions),
            rewards=list(ep.rewards),
            terminations=list(ep.terminations),
            truncations=list(ep.truncations),
            infos={},
        )
        for ep in episodes
    ]
    root = Path(data_dir).expanduser() / "minari"
    with _minari_root(root), warnings.catch_warnings():
        # Minari recommends author, e-mail, code link and an eval env; rlsft's data has none.
        warnings.filterwarnings("ignore", message=r"`\w+` is set to None", category=UserWarning)
        create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env_id,
            algorithm_name="rlsft",
            ref_min_score=ref_min_score,
            ref_max_score=ref_max_score,
            description=description or f"{dataset_id}, written by rlsft",
        )
    return root / dataset_id / "data"
