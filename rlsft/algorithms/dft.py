"""Dynamic fine-tuning (Wu et al. 2025): SFT whose every step is scaled by its own probability.

    L(theta) = - sum_t sg(pi_theta(a_t|s_t)) log pi_theta(a_t|s_t)            over D+ (as SFT)

On text, pi_theta(a_t|s_t) is a token's probability in [0, 1], the published loss. On Gaussian
policies it is a density, whose size depends on the units of the actions; the scale-free
version (normalize=true, the control default) divides the weights by their mean over the
batch's real steps,

    w_t = sg(pi_theta(a_t|s_t)) / mean_{t' in batch} sg(pi_theta(a_t'|s_t'))

so that no constant change of units (which scales every density alike) alters them.
"""

from __future__ import annotations

from tensordict import TensorDict
from torch import nn

from rlsft.algorithms.base import Algorithm, LossOutput, check_reduction, nll_loss
from rlsft.algorithms.importance_weights import importance_weights, normalized_exp_weights


class DFT(Algorithm):
    name = "dft"
    init_from_reference = True

    def __init__(self, normalize: bool = True, reduction: str = "trajectory_mean") -> None:
        super().__init__()
        check_reduction(reduction)
        self.normalize, self.reduction = normalize, reduction

    def loss(self, policy: nn.Module, batch: TensorDict) -> LossOutput:
        mask = batch["mask"]
        log_prob = policy.log_prob(batch)
        if self.normalize:
            weights, metrics = normalized_exp_weights(log_prob, mask)
        else:  # probabilities, at most 1: the clip at 1 never binds
            weights, metrics = importance_weights(log_prob, 1.0, 0.0, 1.0, False, mask=mask)
        loss = nll_loss(log_prob, mask, weights, self.reduction)
        return LossOutput(loss, {"nll": nll_loss(log_prob.detach(), mask, reduction=self.reduction), **metrics})
