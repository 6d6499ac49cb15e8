"""The clipped importance-ratio surrogate shared by PPO and GRPO (Schulman et al., 2017), and the k3 KL estimate.

r_t = pi_theta(a_t|s_t) / pi_old(a_t|s_t)
L   = - mean_t min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)     over the real steps
"""

from __future__ import annotations

import torch

from rlsft.algorithms.importance_weights import effective_sample_size


def k3_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(p || q), one term per sample x ~ p, from log r = log q(x) - log p(x):
    r - 1 - log r, whose mean is unbiased and every term >= 0 (http://joschu.net/blog/kl-approx.html).

    Elementwise: each caller takes the mean over its own real entries.
    """
    return log_ratio.exp() - 1 - log_ratio


def clipped_surrogate(
    log_prob: torch.Tensor,
    sample_log_prob: torch.Tensor,
    advantage: torch.Tensor,
    mask: torch.Tensor,
    steps: torch.Tensor,
    clip_epsilon: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Token-mean clipped surrogate over [B, T] steps, with its ratio diagnostics. `steps` is the mean's
    denominator, `base.real_steps(mask)`: the caller takes it once a batch, for its other token means too."""
    log_ratio = log_prob - sample_log_prob
    ratio = log_ratio.exp()
    surrogate = torch.minimum(ratio * advantage, ratio.clamp(1 - clip_epsilon, 1 + clip_epsilon) * advantage)
    loss = -(surrogate * mask).sum() / steps
    with torch.no_grad():
        real = log_ratio[mask.bool()]
        metrics = {
            "clip_fraction": ((ratio - 1).abs() > clip_epsilon)[mask.bool()].float().mean(),
            "approx_kl": k3_kl(real).mean(),  # KL(old || new): the steps were sampled from old
            "log_ratio_mean": real.mean(),
            "log_ratio_max": real.abs().max(),
            "ratio_ess": effective_sample_size(real.double()).float(),  # over the real steps
        }
    return loss, metrics
