"""Trajectory replay buffers: torchrl storage on the training device, uniform or quality sampling."""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDict
from torchrl.data import LazyTensorStorage, RandomSampler, TensorDictReplayBuffer
from torchrl.data.replay_buffers.samplers import Sampler
from torchrl.data.replay_buffers.storages import Storage

from rlsft import distributed

SAMPLING_KINDS = ("uniform", "quality")


class QualitySampler(Sampler):
    """Samples trajectory i with probability quality_i / sum_j quality_j (method.md §2).

    This is SFT(Q)'s multiset D_Q+ without storing any trajectory twice. Qualities are fixed
    for an offline dataset, so a multinomial draw suffices; torchrl's PrioritizedSampler
    (a sum tree for changing priorities) needs its C++ extension, which does not load on
    every torch build.
    """

    def __init__(self, quality: torch.Tensor) -> None:
        self.probabilities = quality.double() / quality.double().sum()

    def sample(self, storage: Storage, batch_size: int) -> tuple[torch.Tensor, dict]:
        index = torch.multinomial(self.probabilities, batch_size, replacement=True)
        return index.to(self.probabilities.device), {}

    def _empty(self) -> None:
        pass

    def dumps(self, path: Any) -> None:  # stateless: the qualities come with the data
        pass

    def loads(self, path: Any) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass


def trajectory_buffer(
    trajectories: TensorDict, sampling: str, batch_size: int, device: torch.device
) -> TensorDictReplayBuffer:
    """A replay buffer holding every trajectory once, sampling `batch_size` trajectories a call."""
    if sampling == "uniform":
        sampler: Sampler = RandomSampler()
    elif sampling == "quality":
        sampler = QualitySampler(trajectories["quality"].to(device))
    else:
        raise ValueError(f"sampling must be one of {SAMPLING_KINDS}, not {sampling!r}")
    buffer = TensorDictReplayBuffer(
        storage=LazyTensorStorage(len(trajectories), device=device),
        sampler=sampler,
        batch_size=batch_size,
    )
    buffer.extend(trajectories)
    return buffer


class TrajectorySource:
    """Offline batches: `batch_size` whole trajectories a call from a replay buffer of `trajectories`.

    It has no state of its own to checkpoint: the data are fixed and sampling draws from
    torch's global RNG, which checkpoints capture.
    """

    per_rank = False  # every rank draws the same global batch and keeps its share

    def __init__(
        self,
        trajectories: TensorDict,
        sampling: str,
        batch_size: int,
        device: torch.device,
        data_parallel: bool = False,
    ) -> None:
        self.buffer = trajectory_buffer(trajectories, sampling, batch_size, device)
        self.keys = tuple(trajectories.keys())
        # Under torchrun (learner.distributed=ddp) every rank draws the same global batch, in step by the
        # same seed, and keeps its own equal share: together they see what one process would.
        self.share = distributed.share(batch_size, data_parallel=data_parallel)

    def sample(self) -> TensorDict:
        """A batch of `batch_size` trajectories; with data_parallel, this rank's share of it."""
        return self.buffer.sample()[self.share]

    def metrics(self) -> dict[str, float]:
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass

    def close(self) -> None:
        pass
