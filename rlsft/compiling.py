"""How the learner compiles a loss: torch.compile, dynamic, with its backward told what to keep and what to recompute.

Both choices below change what AOTAutograd's partitioner saves between the forward and the backward, never
what is computed: a compiled step gives the numbers it gave without them, bit for bit (checked by resuming
1M-step SAC runs' checkpoints with and without them, benchmarks/results/sac_throughput.md).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch._functorch.config
from torch._inductor.custom_graph_pass import CustomGraphPass, get_hash_for_files
from torch.utils.checkpoint import CheckpointPolicy


class RecomputeBoolMasks(CustomGraphPass):
    """Marks every bool tensor of the joint forward-backward graph to be recomputed where the backward needs it,
    never saved for it.

    A ReLU's backward reads the mask x <= 0. Where the backward needs nothing else of that layer (SAC's critics
    differentiated by the actor's action, their weights held fixed), the partitioner saves the mask, a quarter of
    the bytes of the activation it comes from. On the CPU that is the slow choice: inductor's kernels store a
    bool tensor through at::vec's generic path (torch 2.13), about ten times eager's time (a [2, 256, 256]
    mask: 2.6-3.2 ms against 0.1-0.2 ms), and SAC's step stored two such masks. Recomputed, the comparison
    fuses into the backward's kernels and nothing bool is stored; a comparison recomputed is the same
    comparison, so the numbers do not change."""

    def __call__(self, graph: torch.fx.Graph) -> None:
        for node in graph.nodes:
            value = node.meta.get("val")
            if node.op == "call_function" and isinstance(value, torch.Tensor) and value.dtype == torch.bool:
                node.meta["recompute"] = CheckpointPolicy.MUST_RECOMPUTE

    def uuid(self) -> bytes:  # inductor's caches key compiled graphs on it: a change to this file recompiles
        return get_hash_for_files((__file__,))


def compiled(loss: Callable, device: torch.device) -> Callable:
    """`loss` through torch.compile, dynamic (batches of trajectories differ in length, and one graph serves them
    all), its backward free to recompute views of saved activations (a view computes nothing; without this the
    partitioner saved SAC's ReLU masks beside the activations they could be read from) and, on the CPU, bool
    masks (RecomputeBoolMasks). On a GPU the partitioner's choice stays: a saved mask is the cheapest in memory,
    and the slow store measured is inductor's CPU code."""
    inductor = {"joint_custom_post_pass": RecomputeBoolMasks()} if device.type == "cpu" else {}
    return torch._functorch.config.patch(recompute_views=True)(torch.compile(loss, dynamic=True, options=inductor))
