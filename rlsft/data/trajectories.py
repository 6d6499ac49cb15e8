"""The trajectory-major batch: flat per-step arrays cut into episodes, right-padded to `[N, T]`.

A TensorDict cannot hold `[N]` and `[N, T]` entries under batch dims `[N, T]`, so its batch
dims are `[N]` (one row per trajectory: what replay buffers store and sample) and every
step entry is `[N, T, ...]`. Keys follow torchrl (design.md): `observation`, `action`,
`("next", "reward" | "done" | "terminated" | "truncated")` with a trailing singleton dim,
`mask` [N, T] for the real steps, and per trajectory `return`, `quality`, `episode` [N].

Every array a user's file supplies is checked here before it is used, so that a bad shape,
dtype, length or value is one sentence naming the file's key and the fix, not a traceback
from deep inside torch (or, worse, a NaN loss).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from tensordict import TensorDict

from rlsft.cache_key import cache_key
from rlsft.errors import RLSFTError

FIELDS = ("observation", "action", "reward", "terminated", "truncated")
VECTOR_FIELDS = ("observation", "action")  # [steps, dim]; the other fields hold one value per step
NOT_NUMBERS = {"S": "bytes", "U": "strings", "O": "Python objects", "V": "compound records", "c": "complex numbers"}


@dataclass
class TrajectoryDataset:
    """Padded trajectories plus what evaluation needs to know about where they came from."""

    trajectories: TensorDict
    name: str
    env_id: str | None = None
    ref_min_score: float | None = None
    ref_max_score: float | None = None
    source: str | None = None  # the file or folder it was read from, for messages

    @property
    def fingerprint(self) -> str:
        """A content hash: the cache key for everything derived from this data (e.g. pi_ref)."""
        mask, keys = self.trajectories["mask"], ("observation", "action", ("next", "reward"))
        return cache_key((self.trajectories[key][mask].numpy().tobytes() for key in keys), digest_size=12)


def episode_ends(terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """Lengths of the episodes in a flat stream that ends one wherever terminated or truncated.

    A trailing segment with neither flag (a D4RL file cut mid-episode) is kept as an episode.
    """
    ends = np.flatnonzero(np.logical_or(terminated, truncated)) + 1
    if ends.size == 0 or ends[-1] != len(terminated):
        ends = np.append(ends, len(terminated))
    return np.diff(ends, prepend=0)


def per_step(array: np.ndarray, field: str, key: str, source: str) -> np.ndarray:
    """`array` as one row per step: `[steps, dim]` for observations and actions, `[steps]` else.

    A scalar per step may come either way round: `[steps]` observations or actions are of
    dim 1, and `[steps, 1]` rewards or flags (common in the wild) are squeezed.
    """
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        kind = NOT_NUMBERS.get(array.dtype.kind, "non-numbers")
        raise RLSFTError(
            f"Dataset {source} stores {key} as {kind} ({array.dtype}); write {key} as a float, int or bool array."
        )
    if field in VECTOR_FIELDS:
        array = array[:, None] if array.ndim == 1 else array
        if array.ndim != 2 or array.shape[1] == 0:
            raise RLSFTError(
                f"Dataset {source} stores {key} with shape {array.shape}; write it as [steps, dim] with dim >= 1."
            )
        return array
    array = array[:, 0] if array.ndim == 2 and array.shape[1] == 1 else array
    if array.ndim != 1:
        raise RLSFTError(
            f"Dataset {source} stores {key} with shape {array.shape}; write it as [steps], one value per step."
        )
    return array


def as_float32(array: np.ndarray, key: str, source: str) -> np.ndarray:
    """`array` as float32, the training dtype, refused if that holds a NaN or inf.

    Checked after the cast: a finite float64 beyond float32's range (1e300) becomes inf.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow is reported below
        cast = array.astype(np.float32, copy=False)
    bad = ~np.isfinite(cast)
    if bad.any():
        step = int(np.flatnonzero(bad.reshape(len(cast), -1).any(-1))[0])
        raise RLSFTError(
            f"Dataset {source} has {int(bad.sum())} NaN/inf values in its {key} as float32 (first at step {step};"
            " float32 holds at most 3.4e38); clean, rescale or drop those episodes before training."
        )
    return cast


def as_flags(array: np.ndarray, key: str, source: str) -> np.ndarray:
    """A 0/1 flag per step as bool; any other value (a NaN, a 0.5) is refused rather than read as true."""
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        step = int(np.flatnonzero(~np.isin(array, (0, 1)))[0])
        raise RLSFTError(
            f"Dataset {source} has {key} other than 0 or 1 (first at step {step}: {array[step]}); write {key} as booleans."
        )
    return array.astype(bool)


def flat_to_trajectories(
    observation: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    lengths: np.ndarray | None,
    source: str,
    keys: Mapping[str, str] | None = None,
) -> TensorDict:
    """Scatter flat per-step arrays (episodes back to back, `lengths` long) into `[N, T]`.

    Without `lengths`, an episode ends wherever `terminated` or `truncated` is true (a step
    flagged both counts as terminated, as D4RL's timeouts do). `keys` names the fields as
    the user's file does (`{"reward": "rewards", ...}`), for the messages.
    """
    names = {field: field for field in FIELDS} | dict(keys or {})
    given = dict(zip(FIELDS, (observation, action, reward, terminated, truncated), strict=True))
    arrays = {field: per_step(value, field, names[field], source) for field, value in given.items()}
    counts = {names[field]: len(array) for field, array in arrays.items()}
    if len(set(counts.values())) > 1:
        raise RLSFTError(
            f"Dataset {source} has arrays of unequal lengths ({', '.join(f'{k} {n}' for k, n in counts.items())});"
            " write one row per step in each, or re-export the file."
        )
    terminated_np = as_flags(arrays["terminated"], names["terminated"], source)
    truncated_np = as_flags(arrays["truncated"], names["truncated"], source) & ~terminated_np
    lengths = episode_ends(terminated_np, truncated_np) if lengths is None else np.asarray(lengths)
    if len(lengths) == 0 or int(lengths.sum()) == 0:
        raise RLSFTError(f"Dataset {source} holds no steps; point data= at a dataset with at least one episode.")
    if int(lengths.sum()) != len(terminated_np) or (lengths <= 0).any():
        raise RLSFTError(
            f"Dataset {source}'s episode lengths (adding up to {int(lengths.sum())}, shortest {int(lengths.min())}) do not"
            f" cut its {len(terminated_np)} steps into episodes of at least one step; re-export the dataset."
        )
    floats = {field: as_float32(arrays[field], names[field], source) for field in ("observation", "action", "reward")}
    lengths_t = torch.as_tensor(lengths, dtype=torch.long)
    num, horizon = len(lengths_t), int(lengths_t.max())
    episode = torch.repeat_interleave(torch.arange(num), lengths_t)
    starts = torch.cumsum(lengths_t, 0) - lengths_t
    position = torch.arange(int(lengths_t.sum())) - starts[episode]

    def padded(flat: np.ndarray) -> torch.Tensor:
        flat_t = torch.from_numpy(flat)
        out = torch.zeros(num, horizon, *flat_t.shape[1:], dtype=flat_t.dtype)
        out[episode, position] = flat_t
        return out

    terminated_t = padded(terminated_np).unsqueeze(-1)
    truncated_t = padded(truncated_np).unsqueeze(-1)
    reward_t = padded(floats["reward"]).unsqueeze(-1)
    returns = reward_t.squeeze(-1).sum(-1)
    if not torch.isfinite(returns).all():  # finite float32 rewards can still add up past float32's range
        index = int(torch.nonzero(~torch.isfinite(returns))[0, 0])
        raise RLSFTError(
            f"Dataset {source} has an episode (number {index}, from step {int(starts[index])}) whose return, the sum of"
            f" its {names['reward']}, overflows float32; rescale the {names['reward']} before training."
        )
    mask = padded(np.ones(len(episode), dtype=bool))
    return TensorDict(
        {
            "observation": padded(floats["observation"]),
            "action": padded(floats["action"]),
            "mask": mask,
            "next": {
                "reward": reward_t,
                "terminated": terminated_t,
                "truncated": truncated_t,
                "done": terminated_t | truncated_t,
            },
            "return": returns,
            "quality": torch.zeros(num),
            "episode": torch.arange(num),
        },
        batch_size=[num],
    )
