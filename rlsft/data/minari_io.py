"""Minari datasets: read any local one into trajectories, and write rlsft's own in that format."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from minari import EpisodeData, MinariDataset, create_dataset_from_buffers
from minari.data_collector.episode_buffer import EpisodeBuffer
from minari.namespace import NAMESPACE_METADATA_FILENAME

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
    from rlsft.envs.control.mujoco import can_normalize  # here: a text run never pays for MuJoCo's imports

    metadata = dataset.storage.metadata
    scores = metadata.get("ref_min_score"), metadata.get("ref_max_score")
    if None not in scores and not can_normalize(*scores):  # they divide every normalised score: equal ones give inf
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
    datasets) is refused, as is an episode without steps, one whose arrays are not T + 1
    observations and T of the rest, and one whose steps are shaped unlike the first episode's.
    """
    try:
        episodes = list(dataset.iterate_episodes())
    except Exception as error:  # minari and h5py raise bare KeyError/OSError/ValueError for damaged episodes
        raise RLSFTError(
            f"Minari dataset {name}'s episodes cannot be read ({reason(error)}); recreate it or point data= elsewhere."
        ) from error
    if not episodes:
        raise RLSFTError(f"Dataset {name} holds no episodes; point data= at a dataset with at least one episode.")
    first = {key: getattr(episodes[0], key) for key in MINARI_KEYS.values()}
    for ep in episodes:
        arrays = {key: getattr(ep, key) for key in MINARI_KEYS.values()}
        for key, value in arrays.items():
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
                kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
                raise RLSFTError(
                    f"Dataset {name} stores {key} as {kind}; rlsft trains on numeric array (Box) spaces only,"
                    " so flatten a Dict or Tuple space into one array per step."
                )
        # Checked episode by episode: the steps are concatenated, so a reward missing from one episode and one
        # over in the next would add up to the right total and shift every later return across the boundary.
        length = {key: len(value) if value.ndim else 0 for key, value in arrays.items()}
        steps = length["actions"]
        if steps == 0 or length != {key: steps for key in length} | {"observations": steps + 1}:
            raise RLSFTError(
                f"Dataset {name}'s episode {ep.id} holds {length['observations']} observations, {steps} actions,"
                f" {length['rewards']} rewards, {length['terminations']} terminations and {length['truncations']}"
                " truncations, not T + 1 observations and T of the others with T >= 1; recreate it or drop that"
                " episode."
            )
        for key, value in arrays.items():  # concatenation needs one shape of a step across episodes
            if value.shape[1:] != first[key].shape[1:]:
                raise RLSFTError(
                    f"Dataset {name}'s episode {ep.id} holds {key} of shape {value.shape[1:]} a step but episode"
                    f" {episodes[0].id} of {first[key].shape[1:]}; recreate it or drop the episodes that differ."
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

    Minari writes metadata.json before the episodes, and `find_minari` takes a folder holding one
    for a dataset: so the dataset is written beside its final folder, in a hidden Minari root that
    Minari's own listings skip, and renamed into place once complete. A write cut short leaves no
    dataset; what it left is removed by the next write of the id. Processes that may write the same
    id at once must hold `dataset_lock` while they look for it and write it.
    Returns the dataset's `data/` folder, which `load_dataset` accepts as well as the id.
    """
    root = minari_roots(data_dir)[0]
    final = root / dataset_id
    if final.exists():
        raise RLSFTError(f"Minari dataset {dataset_id} exists already at {final}; delete it or write another id.")
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
    writing = final.with_name(f".{final.name}.writing")
    shutil.rmtree(writing, ignore_errors=True)  # left by a write that was killed
    try:
        with _minari_root(writing), warnings.catch_warnings():
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
        (writing / dataset_id).rename(final)
        for namespace in list(writing.rglob(NAMESPACE_METADATA_FILENAME)):  # Minari's record of the namespaces
            target = root / namespace.relative_to(writing)
            if not target.exists():
                namespace.replace(target)
    finally:
        shutil.rmtree(writing, ignore_errors=True)
    return final / "data"


@contextlib.contextmanager
def dataset_lock(dataset_id: str, data_dir: str | Path) -> Iterator[None]:
    """Held by one process at a time, for the dataset `dataset_id` under `data_dir`: an exclusive flock on a
    hidden file beside its folder, which the system releases when the process ends, however it ends."""
    final = minari_roots(data_dir)[0] / dataset_id
    final.parent.mkdir(parents=True, exist_ok=True)
    with final.with_name(f".{final.name}.lock").open("a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        yield
