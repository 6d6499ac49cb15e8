"""The Gaussian MLP policy of method.md §4."""

from __future__ import annotations

import math

import torch
from tensordict import TensorDict

from rlsft.cli import compose_config
from rlsft.policies import GaussianMLP, make_policy


def batch(observation: torch.Tensor, action: torch.Tensor, mask: torch.Tensor) -> TensorDict:
    return TensorDict({"observation": observation, "action": action, "mask": mask}, batch_size=mask.shape[:1])


def test_architecture_is_three_by_256_relu_with_state_independent_log_std() -> None:
    policy = GaussianMLP(11, 3)
    linears = [m for m in policy.mean_net if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(11, 256), (256, 256), (256, 256), (256, 3)]
    assert sum(isinstance(m, torch.nn.ReLU) for m in policy.mean_net) == 3
    assert policy.log_std.shape == (3,)


def test_log_prob_is_the_gaussian_density_on_raw_actions_and_zero_on_padding() -> None:
    torch.manual_seed(0)
    policy = GaussianMLP(4, 2)
    with torch.no_grad():
        policy.log_std.copy_(torch.tensor([-9.0, 3.0]))  # outside [-5, 2]: must be clipped
    observation, action = torch.randn(3, 5, 4), torch.randn(3, 5, 2) * 2
    mask = torch.arange(5) < torch.tensor([[5], [2], [1]])
    log_prob = policy.log_prob(batch(observation, action, mask))
    mean = torch.tanh(policy.mean_net(observation))
    std = torch.tensor([math.exp(-5.0), math.exp(2.0)])
    expected = (-((action - mean) ** 2) / (2 * std**2) - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(log_prob[mask], expected[mask])
    assert (log_prob[~mask] == 0).all()


def test_deterministic_action_is_the_tanh_mean_within_bounds() -> None:
    policy = GaussianMLP(4, 2)
    observation = torch.randn(10, 4) * 100
    action = policy.mean_action(observation)
    assert torch.equal(action, torch.tanh(policy.mean_net(observation)))
    assert action.abs().max() <= 1


def test_observation_normalizer_uses_real_steps_only() -> None:
    policy = GaussianMLP(2, 1, normalize_observations=True)
    observation = torch.tensor([[[1.0, 10.0], [3.0, 30.0], [1e6, 1e6]]])
    mask = torch.tensor([[True, True, False]])
    policy.fit_observation_normalizer(batch(observation, torch.zeros(1, 3, 1), mask))
    torch.testing.assert_close(policy.observation_mean, torch.tensor([2.0, 20.0]))
    torch.testing.assert_close(policy.observation_std, torch.tensor([2**0.5, 200**0.5]) + 1e-3)
    assert "observation_mean" in policy.state_dict()  # statistics travel with checkpoints


def test_the_configured_control_policy_standardises_with_the_data_statistics() -> None:
    """Standardising is the default (benchmarks/results/control/README.md says why), and
    `policy.normalize_observations=false` keeps observations raw."""
    observation = torch.tensor([[[1.0, 10.0], [3.0, 30.0]]])
    data = batch(observation, torch.zeros(1, 2, 1), torch.ones(1, 2, dtype=torch.bool))
    policy = make_policy(compose_config("train", []).policy, data, observation_dim=2, action_dim=1)
    torch.testing.assert_close(policy.normalize(observation[0]), torch.tensor([[-1.0, -1.0], [1.0, 1.0]]) / 2**0.5,
                               atol=1e-3, rtol=0)  # fmt: skip
    raw = make_policy(compose_config("train", ["policy.normalize_observations=false"]).policy, data,
                      observation_dim=2, action_dim=1)  # fmt: skip
    assert torch.equal(raw.normalize(observation[0]), observation[0])
