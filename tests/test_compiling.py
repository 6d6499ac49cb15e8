"""What a compiled loss keeps for its backward on the CPU: no bool masks, and the same gradients."""

from __future__ import annotations

import torch
import torch._dynamo
from torch import nn

from rlsft.compiling import compiled


def test_a_relu_critic_differentiated_by_its_input_saves_floats_not_masks_and_the_same_gradient() -> None:
    """SAC's actor loss through a critic held fixed: the ReLU masks are all its backward needs of each layer,
    which torch.compile alone saves as bool tensors (slow to store on the CPU); `compiled` saves the activations
    they come from and recomputes the masks, with the gradient bit for bit."""
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 1))
    critic.requires_grad_(False)

    def actor_loss(action: torch.Tensor) -> torch.Tensor:
        return -critic(action).mean()

    action = torch.randn(32, 8, requires_grad=True)
    saved, gradients = {}, {}
    for name, function in [("plain", torch.compile(actor_loss, dynamic=True)),
                           ("rlsft", compiled(actor_loss, torch.device("cpu")))]:  # fmt: skip
        torch._dynamo.reset()
        loss = function(action)
        saved[name] = [tensor.dtype for tensor in loss.grad_fn.saved_tensors]
        (gradients[name],) = torch.autograd.grad(loss, action)
    assert saved["plain"].count(torch.bool) == 2  # what the pass is for: without it, one mask per ReLU
    assert torch.bool not in saved["rlsft"]
    assert torch.equal(gradients["rlsft"], gradients["plain"])
