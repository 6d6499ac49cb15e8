"""Curation by return: which trajectories form D+ and how many thresholds each passes.

method.md §2: with thresholds c_1 < ... < c_C, a trajectory's quality is the number of
thresholds its return reaches, and D+ is the trajectories of quality >= 1. One threshold is
a plain filter (%BC, SFT); the default three (90th/95th/98th percentile) give SFT(Q)'s
multiset, where a trajectory passing k thresholds is sampled k times as often.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDict

from rlsft.errors import RLSFTError

CURATION_KINDS = ("quantile", "top_k", "threshold", "none")


def return_thresholds(returns: torch.Tensor, by: str, levels: Sequence[float]) -> torch.Tensor:
    """The return thresholds c_1..c_C named by `levels` (percentiles, counts, or raw returns)."""
    if by not in CURATION_KINDS[:-1]:  # "none" keeps everything without thresholds
        raise RLSFTError(f"Unknown curation kind {by!r}; choose one of {list(CURATION_KINDS)}.")
    if not all(isinstance(level, (int, float)) and not isinstance(level, bool) for level in levels):
        raise RLSFTError(
            f"Curation levels {list(levels)} must be numbers; set curation.levels to a list such as [0.9]."
        )
    returns = returns.double()
    levels_t = torch.as_tensor(list(levels), dtype=torch.float64)
    if levels_t.numel() == 0 or not torch.isfinite(levels_t).all():
        raise RLSFTError(
            f"Curation {by}={list(levels)} needs one or more finite levels; set curation.levels (e.g. [0.9])"
            " or use curation.by=none."
        )
    if by == "quantile":
        if ((levels_t < 0) | (levels_t > 1)).any():
            raise RLSFTError(f"Quantile levels {list(levels)} must lie in [0, 1]; 0.9 keeps the top 10%.")
        return torch.quantile(returns, levels_t)  # linear interpolation, as numpy.percentile
    if by == "top_k":
        if ((levels_t < 1) | (levels_t != levels_t.floor())).any():  # clamped, 0.1 or -5 would keep the best one
            raise RLSFTError(
                f"curation.by=top_k counts {list(levels)} must be whole numbers, 1 or more; set curation.levels to"
                " trajectory counts such as [10]."
            )
        ks = levels_t.clamp(max=len(returns)).long()  # clamped first: a count past int64 (1e30) would wrap
        return returns.sort(descending=True).values[ks - 1]
    return levels_t  # raw return thresholds


def curate(trajectories: TensorDict, by: str, levels: Sequence[float]) -> TensorDict:
    """Keep the trajectories passing at least one threshold, with `quality` = thresholds passed."""
    returns = trajectories["return"]
    if by == "none":
        quality = torch.ones_like(returns)
    else:
        thresholds = return_thresholds(returns, by, levels)
        quality = (returns.double().unsqueeze(-1) >= thresholds).sum(-1).to(returns.dtype)
    kept = quality > 0
    if not kept.any():
        raise RLSFTError(
            f"Curation {by}={list(levels)} keeps none of {len(returns)} trajectories (best return"
            f" {returns.max().item():.1f}); lower curation.levels or use curation.by=none."
        )
    curated = trajectories[kept]
    curated["quality"] = quality[kept]
    return curated
