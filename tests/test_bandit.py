"""The two-armed bandit of method.md §5, trained with rlsft's own losses and learner.

Arms: left pays 1 with probability 1/2, right always. pi_ref is uniform, so the curated
data D+ holds left and right in proportion 1/2 : 1; we use that exact expectation as one
full batch (one left, two rights). SFT's maximum likelihood then converges to
pi(right) = 2/3; iw-SFT with q = pi_theta follows the exact policy gradient to pi(right) -> 1.
"""

from __future__ import annotations

import math

import pytest
import torch
from tensordict import TensorDict
from torch import nn

from rlsft.algorithms.iw_sft import IWSFT
from rlsft.algorithms.sft import SFT
from rlsft.learner import Learner, LearnerConfig

LEFT, RIGHT = 0, 1


class BanditPolicy(nn.Module):
    """A softmax policy over two arms; each trajectory is one action step."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(2))  # pi_ref = uniform

    def log_prob(self, batch: TensorDict) -> torch.Tensor:
        return torch.log_softmax(self.logits, -1)[batch["action"]] * batch["mask"]

    def p_right(self) -> float:
        return torch.softmax(self.logits, -1)[RIGHT].item()


def curated_batch() -> TensorDict:
    actions = torch.tensor([[LEFT], [RIGHT], [RIGHT]])
    return TensorDict(
        {
            "action": actions,
            "mask": torch.ones(3, 1, dtype=torch.bool),
            "ref_log_prob": torch.full((3, 1), math.log(0.5)),
        },
        batch_size=[3],
    )


def train_bandit(algorithm, steps: int = 3000) -> float:
    policy = BanditPolicy()
    config = LearnerConfig(steps=steps, lr=0.05, warmup_steps=0, schedule="constant", device="cpu")
    learner = Learner(policy, algorithm, config)
    batch = curated_batch()
    for _ in range(steps):
        learner.train_step(batch)
    return policy.p_right()


def test_sft_converges_to_two_thirds() -> None:
    assert train_bandit(SFT()) == pytest.approx(2 / 3, abs=1e-3)


def test_iw_sft_with_current_policy_as_q_goes_right() -> None:
    iw_sft = IWSFT(q="policy", alpha=1.0, w_max=1000.0, self_normalize=False)
    assert train_bandit(iw_sft) > 0.95


def test_expected_reward_matches_the_paper() -> None:
    # SFT's fixed point earns 1/3 * 1/2 + 2/3 * 1 = 5/6 (method.md §5).
    p_right = train_bandit(SFT())
    assert (1 - p_right) * 0.5 + p_right * 1.0 == pytest.approx(5 / 6, abs=1e-3)
