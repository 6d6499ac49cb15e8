"""iw-SFT: SFT with importance weights q/pi_ref, a tighter bound on the RL objective.

    J(theta) >= c_ref * E_{tau in D+} [ w(tau) * log p(tau; theta) ] + const,
    w(tau) = q(tau) / pi_ref(tau)   (no gradient; equality when q = p(.; theta))

per trajectory (method.md §3):
    rho_i = (1/L_i) sum_t M_it [log pi_q(a_t|s_t) - log pi_ref(a_t|s_t)]
    w_i   = clip(exp(alpha * rho_i), w_min, w_max),  optionally w_i / sum_j w_j
or per step: w_it = clip(pi_q(a_t|s_t) / pi_ref(a_t|s_t), lo, hi).

q is a lagged copy of the policy:
    "ema"    q <- decay * q + (1 - decay) * theta, every step before the loss (control default)
    "policy" q = theta itself, no gradient (LLM default; no extra forward pass)
    "copy"   q <- theta every `copy_every` steps (the paper's text)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDict
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from rlsft.algorithms.base import Algorithm, LossOutput, check_reduction, nll_loss
from rlsft.algorithms.importance_weights import check_clip_bounds, importance_weights, trajectory_log_ratio
from rlsft.errors import RLSFTError

Q_KINDS = ("ema", "policy", "copy")


class IWSFT(Algorithm):
    name = "iw_sft"
    in_keys = ("mask", "ref_log_prob")
    init_from_reference = True

    def __init__(
        self,
        alpha: float = 10.0,
        w_min: float = 0.0,
        w_max: float = 1000.0,
        self_normalize: bool = True,
        q: str = "ema",
        ema_decay: float = 0.9,
        copy_every: int = 100,
        per_step: bool = False,
        per_step_clip: Sequence[float] = (0.0, 2.0),
        reduction: str = "trajectory_mean",
    ) -> None:
        super().__init__()
        if q not in Q_KINDS:
            raise RLSFTError(f"Unknown q {q!r} for iw-SFT; set algorithm.options.q to one of {list(Q_KINDS)}.")
        check_reduction(reduction)
        if not 0 <= ema_decay <= 1 or copy_every < 1:
            raise RLSFTError(
                f"algorithm.options.ema_decay={ema_decay} must lie in [0, 1] and copy_every={copy_every} be positive."
            )
        if not alpha >= 0:  # NaN too; alpha < 0 would favour the trajectories q finds less likely than pi_ref
            raise RLSFTError(f"algorithm.options.alpha={alpha} must not be negative (0: SFT's weights); fix it.")
        check_clip_bounds((w_min, w_max), "algorithm.options.w_min/w_max")
        check_clip_bounds(per_step_clip, "algorithm.options.per_step_clip")
        self.alpha, self.w_min, self.w_max = alpha, w_min, w_max
        self.self_normalize, self.per_step, self.per_step_clip = self_normalize, per_step, tuple(per_step_clip)
        self.reduction = reduction
        # "copy" is an EMA with decay 0 applied every `copy_every` steps: one update rule.
        self.q_decay = {"ema": ema_decay, "copy": 0.0, "policy": None}[q]
        self.q_update_every = copy_every if q == "copy" else 1
        self.q: AveragedModel | None = None

    def attach(self, policy: nn.Module) -> None:
        if self.q_decay is not None:
            self.q = AveragedModel(policy, multi_avg_fn=get_ema_multi_avg_fn(self.q_decay), use_buffers=True)
            self.q.requires_grad_(False)

    def before_step(self, policy: nn.Module, step: int) -> None:
        if self.q is not None and step % self.q_update_every == 0:
            self.q.update_parameters(policy)

    def loss(self, policy: nn.Module, batch: TensorDict) -> LossOutput:
        mask = batch["mask"]
        log_prob = policy.log_prob(batch)
        with torch.no_grad():
            log_q = log_prob.detach() if self.q is None else self.q.module.log_prob(batch)
            log_ref = batch["ref_log_prob"]
            if self.per_step:
                weights, metrics = importance_weights(
                    log_q - log_ref, 1.0, *self.per_step_clip, self.self_normalize, mask=mask
                )
            else:
                rho = trajectory_log_ratio(log_q, log_ref, mask)
                weights, metrics = importance_weights(rho, self.alpha, self.w_min, self.w_max, self.self_normalize)
        loss = nll_loss(log_prob, mask, weights, self.reduction)
        return LossOutput(loss, {"nll": nll_loss(log_prob.detach(), mask, reduction=self.reduction), **metrics})
