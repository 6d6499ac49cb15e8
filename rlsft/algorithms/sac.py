"""SAC (Haarnoja et al. 2018, its v2 with automatic entropy temperature), as torchrl's SACLoss computes it.

    L_Q     = sum_{k=1,2} mean (Q_k(s, a) - y)^2,   y = r + gamma (1 - terminated) (min_k Qbar_k(s', a') - alpha log pi(a'|s'))
    L_pi    = mean (alpha log pi(a~|s) - min_k Q_k(s, a~)),        a~ ~ pi(.|s), a' ~ pi(.|s')
    L_alpha = mean -log alpha (log pi(a~|s) + target_entropy),     target_entropy = -dim(A)
    Qbar   <- tau Q + (1 - tau) Qbar after every step

Batches are transitions from a replay buffer (rlsft/sources/replay.py) in torchrl's layout, each a
length-1 trajectory (`done` is there, but only `terminated` stops bootstrapping). The
three losses touch disjoint parameters (L_pi sees the critics detached, L_Q the actor's samples without
gradient), so one backward through their sum, with the critics and alpha at their own rate (CleanRL's
q_lr), takes the three optimiser steps CleanRL's sac_continuous_action takes, all from the parameters the
previous step left (CleanRL's actor and alpha steps see the critics it has just updated). CleanRL updates the
actor twice every second step (policy_frequency=2); here once a step, as many updates. torchrl's temperature loss is on
log alpha, CleanRL's on alpha: the same fixed point. The critics are ReLU MLPs, as CleanRL's (runs made
before 2026-12-06 had Tanh ones, torchrl MLP's default: `critic_activation=tanh` resumes them).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDict
from tensordict.nn import TensorDictModule
from torch import nn
from torchrl.modules import MLP, ProbabilisticActor, TanhNormal
from torchrl.objectives import SACLoss, SoftUpdate

from rlsft.algorithms.base import Algorithm, LossOutput
from rlsft.errors import RLSFTError

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}  # the critics' nonlinearity, by algorithm.options.critic_activation


class Critic(nn.Module):
    """Q(s, a): an MLP on the observation and the action side by side."""

    def __init__(
        self, observation_dim: int, action_dim: int, hidden_sizes: Sequence[int], activation: str = "relu"
    ) -> None:
        super().__init__()
        self.net = MLP(
            in_features=observation_dim + action_dim,
            out_features=1,
            num_cells=list(hidden_sizes),
            activation_class=ACTIVATIONS[activation],
        )

    def forward(self, observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([observation, action], dim=-1))


class LocScale(nn.Module):
    """The policy's mu(s) and sigma(s) as a module of its own parameters, the actor that SACLoss reads."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, observation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy.loc_scale(observation)


class SAC(Algorithm):
    name = "sac"
    source = "replay"
    domains = ("control",)
    in_keys = ("observation", "action", "next", "mask")

    def __init__(
        self,
        gamma: float = 0.99,
        tau: float = 0.005,
        q_lr: float = 1e-3,
        autotune: bool = True,
        alpha: float = 0.2,
        critic_hidden_sizes: Sequence[int] = (256, 256),
        critic_activation: str = "relu",
    ) -> None:
        super().__init__()
        if critic_activation not in ACTIVATIONS:
            raise RLSFTError(
                f"algorithm.options.critic_activation={critic_activation!r} is not one of {sorted(ACTIVATIONS)};"
                " fix the override."
            )
        if not all(type(size) is int and size >= 1 for size in critic_hidden_sizes):  # torch's own error otherwise
            raise RLSFTError(
                f"algorithm.options.critic_hidden_sizes={list(critic_hidden_sizes)} must be positive layer sizes;"
                " fix the override."
            )
        if not (0 < gamma <= 1 and 0 < tau <= 1 and q_lr > 0 and alpha > 0):
            raise RLSFTError(
                f"SAC needs gamma and tau in (0, 1], q_lr and alpha positive (got gamma={gamma}, tau={tau},"
                f" q_lr={q_lr}, alpha={alpha}); fix algorithm.options."
            )
        self.gamma, self.tau, self.q_lr, self.autotune, self.alpha = gamma, tau, q_lr, autotune, alpha
        self.critic_hidden_sizes, self.critic_activation = tuple(critic_hidden_sizes), critic_activation

    def attach(self, policy: nn.Module) -> None:
        if not hasattr(policy, "loc_scale"):
            raise RLSFTError(
                f"sac trains a squashed-Gaussian actor, and policy={policy.name} is not one; use policy=tanh_gaussian."
            )
        actor = ProbabilisticActor(
            TensorDictModule(LocScale(policy), in_keys=["observation"], out_keys=["loc", "scale"]),
            in_keys=["loc", "scale"],
            distribution_class=TanhNormal,
            distribution_kwargs={"low": -1.0, "high": 1.0},
        )
        critic = TensorDictModule(
            Critic(policy.observation_dim, policy.action_dim, self.critic_hidden_sizes, self.critic_activation),
            in_keys=["observation", "action"],
            out_keys=["state_action_value"],
        )
        self.sac = SACLoss(
            actor, critic, num_qvalue_nets=2, loss_function="l2", alpha_init=1.0 if self.autotune else self.alpha,
            fixed_alpha=not self.autotune, target_entropy=-float(policy.action_dim),
        )  # fmt: skip
        self.sac.make_value_estimator(gamma=self.gamma)
        _ = self.sac.target_entropy  # SACLoss makes it a buffer when first read: before a checkpoint's state loads
        self.target_update = SoftUpdate(self.sac, tau=self.tau)

    def parameter_groups(self, parameters: list[nn.Parameter]) -> list[dict]:
        return [{"params": parameters, "lr": self.q_lr}] if parameters else []  # the critics and log alpha

    def before_step(self, policy: nn.Module, step: int) -> None:
        if step > 0:  # Qbar moves toward the critics as the previous step left them
            self.target_update.step()

    def loss(self, policy: nn.Module, batch: TensorDict) -> LossOutput:
        out = self.sac(batch[:, 0])  # each transition is a length-1 trajectory
        loss = out["loss_actor"] + out["loss_qvalue"] + out["loss_alpha"]
        return LossOutput(
            loss,
            {
                "actor_loss": out["loss_actor"].detach(),
                "q_loss": out["loss_qvalue"].detach(),
                "alpha": out["alpha"].detach(),
                "entropy": out["entropy"].detach(),
            },
        )
