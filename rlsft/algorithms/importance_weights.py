"""Importance weights w = q/pi_ref for iw-SFT (method.md §3), computed in log space.

Whatever the log-probs (+-1e4, inf, NaN), the weights are finite: the log ratio is made
finite and bounded, clipped in log space, and self-normalisation divides by the batch mean
after subtracting the max, so the largest weight is exactly 1 before that division.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from rlsft.distributed import all_ranks_max, all_ranks_sum
from rlsft.errors import RLSFTError

_LOG_RATIO_BOUND = 1e30  # |alpha * rho| stays finite in float64 for any alpha < 1e270


def effective_sample_size(log_weights: torch.Tensor) -> torch.Tensor:
    """(sum w)^2 / sum w^2 from log-weights (-inf for none), without overflow."""
    shifted = (log_weights - log_weights.max()).exp()
    return shifted.sum() ** 2 / (shifted**2).sum()


def check_clip_bounds(bounds: Sequence[float], what: str) -> None:
    """Refuses weight clip bounds unless they are [low, high] with 0 <= low <= high, high finite and above 0:
    log(high) bounds the log-weights, and a high of 0 would weight every trajectory 0. `what` names them."""
    if len(bounds) != 2:
        raise RLSFTError(f"The weight clip {what}={list(bounds)} needs two numbers, [low, high].")
    low, high = bounds
    if not 0 <= low <= high < math.inf or high == 0:
        raise RLSFTError(f"The weight clip {what}={list(bounds)} needs 0 <= low <= high, with high finite and above 0.")


def trajectory_log_ratio(log_q: torch.Tensor, log_ref: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """rho_i = (1/L_i) sum_t M_it [log pi_q(a_t|s_t) - log pi_ref(a_t|s_t)]; [B, T] -> [B]."""
    return ((log_q - log_ref) * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def importance_weights(
    log_ratio: torch.Tensor,
    alpha: float,
    w_min: float,
    w_max: float,
    self_normalize: bool,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """w = clip(exp(alpha * log_ratio), w_min, w_max), optionally self-normalised (no gradient).

    log_ratio is per trajectory [B], or per step [B, T] with `mask` marking the real steps.
    Self-normalisation is w / sum(w), scaled by the number of weights so that the batch-mean
    reduction becomes the w-weighted average (and alpha = 0 gives exactly the BC loss).
    Returns the weights in log_ratio's dtype (zero on padding) and their statistics:
    mean/min/max of the clipped w and the effective sample size (sum w)^2 / sum w^2.
    """
    check_clip_bounds((w_min, w_max), "w_min/w_max")
    valid = torch.ones_like(log_ratio, dtype=torch.bool) if mask is None else mask.bool()
    rho = log_ratio.detach().double().nan_to_num(0.0).clamp(-_LOG_RATIO_BOUND, _LOG_RATIO_BOUND)
    log_w = (alpha * rho).clamp(min=math.log(w_min) if w_min > 0 else None, max=math.log(w_max))
    log_w = log_w.masked_fill(~valid, -math.inf)
    # Over the global batch when it is split over ranks (rlsft.distributed), in two collectives: the weights and
    # their statistics are the one-process numbers.
    largest, negated_smallest = all_ranks_max(torch.stack([log_w.max(), -log_w.masked_fill(~valid, math.inf).min()]))
    clipped = log_w.exp()  # 0 on padding
    shifted = (log_w - largest).exp()  # largest weight exactly 1: sums below never vanish
    count, total, total_squares, clipped_total = all_ranks_sum(
        torch.stack([valid.sum().double(), shifted.sum(), shifted.pow(2).sum(), clipped.sum()])
    )
    weights = shifted * (count / total) if self_normalize else clipped
    metrics = {
        "weight_mean": clipped_total / count,
        "weight_min": (-negated_smallest).exp(),
        "weight_max": largest.exp(),
        "weight_ess": total**2 / total_squares,  # (sum w)^2 / sum w^2, the shift cancelling
    }
    return weights.to(log_ratio.dtype), {key: value.float() for key, value in metrics.items()}


def normalized_exp_weights(
    log_weights: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """w proportional to exp(log_weights), with mean 1 over the batch (global when split over ranks), and no
    clip: the self-normalised weights above of log-weights shifted to a maximum of 0, which a clip at 1 leaves
    as they are. A softmax over the batch, times its size, as NaN-proof as `importance_weights`."""
    valid = torch.ones_like(log_weights, dtype=torch.bool) if mask is None else mask.bool()
    shifted = log_weights.detach().double().nan_to_num(0.0) - all_ranks_max(log_weights.detach().double()[valid].max())
    return importance_weights(shifted, 1.0, 0.0, 1.0, True, mask=mask)
