"""iw-SFT: weights per method.md §3, finite for any log-probs; q updates; alpha = 0 is BC."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from tensordict import TensorDict

from rlsft.algorithms.bc import BC
from rlsft.algorithms.importance_weights import importance_weights, trajectory_log_ratio
from rlsft.algorithms.iw_sft import IWSFT
from rlsft.errors import RLSFTError
from rlsft.policies import GaussianMLP

OBS, ACT = 5, 2


def random_batch(batch: int = 6, horizon: int = 7, seed: int = 0) -> TensorDict:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, horizon + 1, (batch,), generator=generator)
    mask = torch.arange(horizon) < lengths.unsqueeze(-1)
    return TensorDict(
        {
            "observation": torch.randn(batch, horizon, OBS, generator=generator),
            "action": torch.rand(batch, horizon, ACT, generator=generator) * 2 - 1,
            "mask": mask,
            "ref_log_prob": torch.randn(batch, horizon, generator=generator) * mask,
        },
        batch_size=[batch],
    )


def loss_and_grads(algorithm, policy: GaussianMLP, batch: TensorDict):
    policy.zero_grad()
    loss = algorithm.loss(policy, batch).loss
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in policy.parameters()]


@pytest.mark.parametrize("q", ["ema", "policy", "copy"])
@pytest.mark.parametrize("reduction", ["trajectory_mean", "token_mean"])
def test_alpha_zero_is_exactly_bc(q: str, reduction: str) -> None:
    torch.manual_seed(0)
    policy, batch = GaussianMLP(OBS, ACT), random_batch()
    iw_sft = IWSFT(alpha=0.0, q=q, reduction=reduction)
    iw_sft.attach(policy)
    iw_sft.before_step(policy, 0)
    with torch.no_grad():  # q must differ from the policy for the test to mean anything
        for p in policy.parameters():
            p.add_(0.1)
    bc_loss, bc_grads = loss_and_grads(BC(reduction=reduction), policy, batch)
    iw_loss, iw_grads = loss_and_grads(iw_sft, policy, batch)
    assert torch.equal(bc_loss, iw_loss)
    for bc_grad, iw_grad in zip(bc_grads, iw_grads):
        assert torch.equal(bc_grad, iw_grad)


def test_trajectory_weights_follow_the_equations() -> None:
    batch = random_batch()
    log_q = torch.randn(batch["mask"].shape) * batch["mask"]
    rho = trajectory_log_ratio(log_q, batch["ref_log_prob"], batch["mask"])
    lengths = batch["mask"].sum(-1)
    expected_rho = torch.stack(
        [(log_q[i, :n] - batch["ref_log_prob"][i, :n]).mean() for i, n in enumerate(lengths.tolist())]
    )
    torch.testing.assert_close(rho, expected_rho)
    alpha, w_min, w_max = 3.0, 0.1, 5.0
    weights, metrics = importance_weights(rho, alpha, w_min, w_max, self_normalize=False)
    expected = torch.exp(alpha * expected_rho).clamp(w_min, w_max)
    torch.testing.assert_close(weights, expected)
    torch.testing.assert_close(metrics["weight_ess"], expected.sum() ** 2 / (expected**2).sum())
    torch.testing.assert_close(metrics["weight_max"], expected.max())
    normalized, _ = importance_weights(rho, alpha, w_min, w_max, self_normalize=True)
    torch.testing.assert_close(normalized, expected / expected.sum() * len(expected))


def test_per_step_weights_are_clipped_step_ratios() -> None:
    batch = random_batch()
    mask = batch["mask"]
    log_ratio = torch.randn(mask.shape) * mask
    weights, _ = importance_weights(log_ratio, 1.0, 0.2, 1.8, self_normalize=False, mask=mask)
    torch.testing.assert_close(weights[mask], log_ratio.exp().clamp(0.2, 1.8)[mask])
    assert (weights[~mask] == 0).all()


log_prob_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([1e4, -1e4, 0.0, math.inf, -math.inf, math.nan]),
)


@settings(max_examples=300, deadline=None)
@given(
    log_q=arrays(np.float32, (4, 3), elements=log_prob_values),
    log_ref=arrays(np.float32, (4, 3), elements=log_prob_values),
    alpha=st.sampled_from([0.0, 0.1, 1.0, 10.0, 1e6]),
    self_normalize=st.booleans(),
    per_step=st.booleans(),
)
def test_weights_are_finite_for_any_log_probs(log_q, log_ref, alpha, self_normalize, per_step) -> None:
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    log_q_t, log_ref_t = torch.from_numpy(log_q), torch.from_numpy(log_ref)
    if per_step:
        log_ratio, step_mask = log_q_t - log_ref_t, mask
    else:
        log_ratio, step_mask = trajectory_log_ratio(log_q_t, log_ref_t, mask), None
    weights, metrics = importance_weights(log_ratio, alpha, 0.0, 1000.0, self_normalize, mask=step_mask)
    assert torch.isfinite(weights).all()
    assert (weights >= 0).all()
    for value in metrics.values():
        assert torch.isfinite(value)
    count = int(mask.sum()) if per_step else len(weights)
    assert 1.0 - 1e-4 <= metrics["weight_ess"] <= count + 1e-3
    if self_normalize:
        assert weights.sum().item() == pytest.approx(count, rel=1e-5)
    else:
        assert (weights <= 1000.0).all()


def test_ema_q_updates_before_each_step() -> None:
    torch.manual_seed(0)
    policy = GaussianMLP(OBS, ACT)
    iw_sft = IWSFT(q="ema", ema_decay=0.9)
    iw_sft.attach(policy)
    iw_sft.before_step(policy, 0)
    q_before = [p.clone() for p in iw_sft.q.module.parameters()]
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p))
    iw_sft.before_step(policy, 1)
    for q_old, theta, q_new in zip(q_before, policy.parameters(), iw_sft.q.module.parameters()):
        torch.testing.assert_close(q_new, 0.9 * q_old + 0.1 * theta)


def test_copy_q_copies_every_n_steps() -> None:
    torch.manual_seed(0)
    policy = GaussianMLP(OBS, ACT)
    iw_sft = IWSFT(q="copy", copy_every=3)
    iw_sft.attach(policy)
    snapshots = []
    for step in range(7):
        iw_sft.before_step(policy, step)
        snapshots.append(iw_sft.q.module.log_std.clone())
        with torch.no_grad():
            policy.log_std.add_(1.0)
    # q took theta at steps 0, 3 and 6, when log_std had been raised 0, 3 and 6 times.
    assert [s[0].item() for s in snapshots] == [0, 0, 0, 3, 3, 3, 6]


def test_policy_q_needs_no_extra_network() -> None:
    iw_sft = IWSFT(q="policy")
    iw_sft.attach(GaussianMLP(OBS, ACT))
    assert iw_sft.q is None and not list(iw_sft.parameters())


@pytest.mark.parametrize(
    "options", [{"q": "median"}, {"w_min": 2.0, "w_max": 1.0}, {"w_max": math.inf}, {"reduction": "sum"}]
)
def test_bad_options_are_explained(options: dict) -> None:
    with pytest.raises(RLSFTError):
        IWSFT(**options)


def test_importance_weights_refuse_clip_bounds_that_are_no_range() -> None:
    with pytest.raises(RLSFTError, match=r"The weight clip w_min/w_max=\[2.0, 1.0\] needs 0 <= low <= high"):
        importance_weights(torch.zeros(3), 1.0, 2.0, 1.0, self_normalize=False)
