"""The trajectory-major batch: flat per-step arrays cut into episodes, right-padded to `[N, T]`.

A TensorDict cannot hold `[N]` and `[N, T]` entries under batch dims `[N, T]`, so its batch
dims are `[N]` (one row per trajectory: what replay buffers store and sample) and every
step entry is `[N, T, ...]`. Keys follow torchrl (design.md): `observation`, `action`,
`("next", "reward" | "done" | "terminated" | "truncated")` with a trailing singleton dim,
`mask` [N, T] for the real steps, and per trajectory `return`, `quality`, `episode` [N].
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch
from tensordict import TensorDict

from rlsft.errors import RLSFTError


@dataclass
class TrajectoryDataset:
    """Padded trajectories plus what evaluation needs to know about where they came from."""

    trajectories: TensorDict
    name: str
    env_id: str | None = None
    ref_min_score: float | None = None
    ref_max_score: float | None = None

    @property
    def fingerprint(self) -> str:
        """A content hash: the cache key for everything derived from this data (e.g. pi_ref)."""
        digest = hashlib.blake2b(digest_size=12)
        mask = self.trajectories["mask"]
        for key in ("observation", "action", ("next", "reward")):
            digest.update(self.trajectories[key][mask].numpy().tobytes())
        return digest.hexdigest()


def episode_ends(terminated: np.ndarray, truncated: np.ndarray) -> np.ndarray:
    """Lengths of the episodes in a flat stream that ends one wherever terminated or truncated.

    A trailing segment with neither flag (a D4RL file cut mid-episode) is kept as an episode.
    """
    ends = np.flatnonzero(np.logical_or(terminated, truncated)) + 1
    if ends.size == 0 or ends[-1] != len(terminated):
        ends = np.append(ends, len(terminated))
    return np.diff(ends, prepend=0)


def flat_to_trajectories(
    observation: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    lengths: np.ndarray,
    source: str,
) -> TensorDict:
    """Scatter flat per-step arrays (episodes back to back, `lengths` long) into `[N, T]`."""
    if len(lengths) == 0 or int(lengths.sum()) == 0:
        raise RLSFTError(f"Dataset {source} holds no steps; point data= at a dataset with at least one episode.")
    for name, array in (("observations", observation), ("actions", action), ("rewards", reward)):
        bad = ~np.isfinite(array)
        if bad.any():
            step = int(np.flatnonzero(bad.reshape(len(array), -1).any(-1))[0])
            raise RLSFTError(
                f"Dataset {source} has {int(bad.sum())} NaN/inf values in its {name} (first at step {step});"
                " clean or drop those episodes before training."
            )
    lengths_t = torch.as_tensor(lengths, dtype=torch.long)
    num, horizon = len(lengths_t), int(lengths_t.max())
    episode = torch.repeat_interleave(torch.arange(num), lengths_t)
    starts = torch.cumsum(lengths_t, 0) - lengths_t
    position = torch.arange(int(lengths_t.sum())) - starts[episode]

    def padded(flat: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
        flat_t = torch.as_tensor(np.asarray(flat), dtype=dtype)
        out = torch.zeros(num, horizon, *flat_t.shape[1:], dtype=dtype)
        out[episode, position] = flat_t
        return out

    terminated_t = padded(terminated, torch.bool).unsqueeze(-1)
    truncated_t = padded(truncated, torch.bool).unsqueeze(-1)
    reward_t = padded(reward, torch.float32).unsqueeze(-1)
    mask = padded(np.ones(len(episode), dtype=bool), torch.bool)
    return TensorDict(
        {
            "observation": padded(observation, torch.float32),
            "action": padded(action, torch.float32),
            "mask": mask,
            "next": {
                "reward": reward_t,
                "terminated": terminated_t,
                "truncated": truncated_t,
                "done": terminated_t | truncated_t,
            },
            "return": reward_t.squeeze(-1).sum(-1),
            "quality": torch.zeros(num),
            "episode": torch.arange(num),
        },
        batch_size=[num],
    )
