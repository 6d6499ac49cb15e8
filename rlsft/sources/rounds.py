"""Iterated SFT (RAFT, ReST-EM, expert iteration): the curated data are drawn again from the current policy
every `every` gradient steps, and an SFT-family loss trains on the latest round.

Round 0 is the offline data (the start model's curated samples); at every `every`-th step `resample()`
(the domain's: on text, K completions of each training prompt from the current policy, scored and
curated by the verifier) gives the next round and how many trajectories it drew (logged, summed, as
`resampled`: with the first round's, what the run sampled), with `ref_log_prob` under the policy that sampled it
where the loss reads it, so that iw-SFT's pi_ref of each round is that policy (method.md §2's bound
with the latest data). Batches come from the round's data as from any offline dataset.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from tensordict import TensorDict

from rlsft.sources.trajectories import TrajectorySource


class IteratedSource:
    per_rank = False  # every rank resamples with the same RNG, so all hold the same round

    def __init__(
        self,
        initial: TensorDict,
        resample: Callable[[], tuple[TensorDict, int]],
        every: int,
        sampling: str,
        batch_size: int,
        device: torch.device,
        data_parallel: bool = False,
    ) -> None:
        self.resample, self.every = resample, every
        self.make = lambda data: TrajectorySource(data, sampling, batch_size, device, data_parallel)
        self.keys = tuple(initial.keys())
        self.round, self.served, self.data = 0, 0, initial
        self.resampled = 0  # trajectories drawn by the rounds after the first, before curation
        self.source = self.make(initial)

    def sample(self) -> TensorDict:
        if self.served == self.every:  # a new round, from the policy as it is now
            self.data, drawn = self.resample()
            self.round, self.served, self.resampled = self.round + 1, 0, self.resampled + drawn
            self.source = self.make(self.data)
        self.served += 1
        return self.source.sample()

    def metrics(self) -> dict[str, float]:
        return {
            "round": float(self.round),
            "round_trajectories": float(len(self.data)),
            "resampled": float(self.resampled),
        }

    def state_dict(self) -> dict:
        """The round's data and how far into it the run is: a resume mid-round continues it exactly."""
        return {
            "round": self.round,
            "served": self.served,
            "resampled": self.resampled,
            "data": self.data.cpu().to_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.round, self.served, self.resampled = state["round"], state["served"], state["resampled"]
        self.data = TensorDict(state["data"], batch_size=[len(state["data"]["mask"])])
        self.source = self.make(self.data)

    def close(self) -> None:
        pass
