"""DFT and reward-weighted regression: their losses against the equations of their docstrings."""

from __future__ import annotations

import pytest
import torch
from tensordict import TensorDict

from rlsft.algorithms.base import nll_loss
from rlsft.algorithms.bc import BC
from rlsft.algorithms.dft import DFT
from rlsft.algorithms.rwr import RewardWeightedRegression
from rlsft.errors import RLSFTError
from rlsft.policies import GaussianMLP

OBS, ACT = 4, 2


def batch_of(returns: list[float], horizon: int = 6, seed: int = 0, action_scale: float = 1.0) -> TensorDict:
    generator = torch.Generator().manual_seed(seed)
    size = len(returns)
    lengths = torch.randint(1, horizon + 1, (size,), generator=generator)
    return TensorDict(
        {
            "observation": torch.randn(size, horizon, OBS, generator=generator),
            "action": (torch.rand(size, horizon, ACT, generator=generator) * 2 - 1) * action_scale,
            "mask": torch.arange(horizon) < lengths.unsqueeze(-1),
            "return": torch.tensor(returns),
        },
        batch_size=[size],
    )


def policy(seed: int = 0) -> GaussianMLP:
    torch.manual_seed(seed)
    return GaussianMLP(OBS, ACT, hidden_sizes=(16,))


@pytest.mark.parametrize("reduction", ["trajectory_mean", "token_mean"])
def test_dft_scales_each_steps_nll_by_its_probability(reduction):
    batch, model = batch_of([0.0] * 5), policy()
    log_prob = model.log_prob(batch)
    expected = nll_loss(log_prob, batch["mask"], log_prob.detach().exp(), reduction)  # -sum_t sg(p_t) log p_t
    assert DFT(normalize=False, reduction=reduction).loss(model, batch).loss.item() == pytest.approx(expected.item())
    mask = batch["mask"]
    weights = log_prob.detach().exp() / log_prob.detach().exp()[mask].mean()  # the scale-free version
    normalized = DFT(normalize=True, reduction=reduction).loss(model, batch)
    assert normalized.loss.item() == pytest.approx(nll_loss(log_prob, mask, weights, reduction).item(), rel=1e-5)
    assert normalized.metrics["weight_max"].item() == pytest.approx(1.0)  # before the division by the mean


class InOtherUnits(torch.nn.Module):
    """The policy over actions measured in units `scale` times as small (a = scale * a'): every density is
    divided by scale^ACT, so every log-prob moves by the same constant, -ACT log scale."""

    def __init__(self, policy: GaussianMLP, scale: float) -> None:
        super().__init__()
        self.policy, self.shift = policy, ACT * torch.log(torch.tensor(scale)).item()

    def log_prob(self, batch: TensorDict) -> torch.Tensor:
        return (self.policy.log_prob(batch) - self.shift) * batch["mask"]


@pytest.mark.parametrize("normalize", [True, False])
def test_only_normalised_dft_is_free_of_the_units_of_the_actions(normalize):
    batch, model = batch_of([0.0] * 5), policy()
    gradients = []
    for scale in (1.0, 10.0):
        model.zero_grad()
        DFT(normalize=normalize).loss(InOtherUnits(model, scale), batch).loss.backward()
        gradients.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    if normalize:  # the same weights in any units: the same gradient
        torch.testing.assert_close(gradients[0], gradients[1], rtol=1e-5, atol=1e-7)
    else:  # raw densities: every weight / 100, and the gradient with them
        torch.testing.assert_close(gradients[1], gradients[0] / 100, rtol=1e-5, atol=1e-9)


def test_rwr_weights_are_a_softmax_of_return_over_beta_and_its_limits_are_bc_and_the_best():
    returns = [1.0, 5.0, 2.0, 9.0]
    batch, model = batch_of(returns), policy()
    log_prob, mask = model.log_prob(batch), batch["mask"]
    for beta in (0.5, 3.0):
        weights = torch.softmax(torch.tensor(returns) / beta, 0) * len(returns)
        expected = nll_loss(log_prob, mask, weights)
        loss = RewardWeightedRegression(beta=beta).loss(model, batch).loss
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    flat = RewardWeightedRegression(beta=1e9).loss(model, batch).loss  # beta -> infinity: BC
    assert flat.item() == pytest.approx(BC().loss(model, batch).loss.item(), rel=1e-5)
    sharp = RewardWeightedRegression(beta=1e-3).loss(model, batch).loss  # beta -> 0: the best trajectory alone
    best = nll_loss(log_prob[3:], mask[3:])  # weight B on it, 0 on the rest, over B trajectories
    assert sharp.item() == pytest.approx(best.item(), rel=1e-5)


def test_rwr_weights_are_finite_for_returns_of_any_size():
    batch, model = batch_of([1e6, -1e6, 0.0, float("nan")]), policy()
    output = RewardWeightedRegression(beta=1.0).loss(model, batch)
    assert torch.isfinite(output.loss) and output.metrics["weight_max"].item() == pytest.approx(1.0)


def test_a_temperature_that_is_not_positive_is_one_sentence():
    with pytest.raises(RLSFTError, match="algorithm.options.beta=0.0 must be positive"):
        RewardWeightedRegression(beta=0.0)


def test_awr_weights_each_step_by_its_standardised_advantage_and_fits_the_value_to_the_return_to_go():
    from torchrl.objectives.value.functional import reward2go

    from rlsft.algorithms.awr import AWR

    batch, model = batch_of([0.0] * 5), policy()
    mask = batch["mask"]
    generator = torch.Generator().manual_seed(1)
    reward = torch.rand(5, 6, 1, generator=generator) * 3 * mask.unsqueeze(-1)
    done = torch.zeros(5, 6, 1, dtype=torch.bool)
    done[torch.arange(5), mask.sum(-1) - 1] = True  # each trajectory ends at its last real step
    batch["next"] = TensorDict({"reward": reward, "done": done}, batch_size=[5, 6])
    awr = AWR(beta=0.5, w_max=3.0, gamma=0.9, value_scale=10.0)
    awr.attach(model)
    output = awr.loss(model, batch)
    returns = torch.stack([  # by hand: sum_k gamma^k r_{t+k} within each trajectory
        torch.stack([sum(0.9**k * reward[i, t + k, 0] for k in range(int(mask[i].sum()) - t)) if mask[i, t]
                     else torch.tensor(0.0) for t in range(6)]) for i in range(5)])  # fmt: skip
    torch.testing.assert_close(reward2go(reward, done, 0.9).squeeze(-1) * mask, returns * mask)
    value = awr.value(batch["observation"]).squeeze(-1).detach()
    advantage = (returns / 10.0 - value)[mask]
    weights = torch.zeros(5, 6)
    weights[mask] = ((advantage - advantage.mean()) / advantage.std() / 0.5).exp().clamp(max=3.0)
    log_prob = model.log_prob(batch)
    value_loss = ((awr.value(batch["observation"]).squeeze(-1) - returns / 10.0).pow(2)[mask]).mean()
    expected = nll_loss(log_prob, mask, weights) + 0.5 * value_loss
    assert output.loss.item() == pytest.approx(expected.item(), rel=1e-4)
    output.loss.backward()  # both the policy and V_phi get gradients
    assert all(p.grad is not None for p in awr.value.parameters())
