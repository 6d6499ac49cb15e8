"""Data-parallel runs under torchrun: this process's place among a run's processes, and the collectives it uses.

`torchrun --nproc-per-node N -m rlsft.cli train ... learner.distributed=ddp` starts N processes (ranks)
of one run, with RANK and WORLD_SIZE set. Every rank draws the same global batch and trains on its own
share of it, the gradients are averaged over the ranks after each backward pass, and rank 0 alone
writes the run's files. Outside torchrun every function here is the single-process identity.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from rlsft.errors import RLSFTError

MODES = ("none", "ddp", "auto")


def launched_processes() -> int:
    """How many processes torchrun started for this run (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def resolve(mode: str) -> str:
    """`learner.distributed` for this launch: auto is ddp under torchrun with 2 or more processes, else none."""
    if mode == "auto":
        return "ddp" if launched_processes() > 1 else "none"
    if mode == "ddp" and launched_processes() < 2:
        raise RLSFTError(
            "learner.distributed=ddp needs 2 or more processes; launch the run with `torchrun --nproc-per-node N -m"
            " rlsft.cli train ...`, or set learner.distributed=none."
        )
    return mode


def start(device: torch.device) -> None:
    """Join the run's process group (gloo on CPU, NCCL on CUDA), once per process."""
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")


def stop() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Whether this process writes the run's files (rank 0, or the only process)."""
    return rank() == 0


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Each gradient becomes its mean over the ranks: one all_reduce of all of them flattened, as DDP's
    buckets do it (a parameter without a gradient counts as a zero one, so every rank sends the same size)."""
    parameters = list(parameters)
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
    flat = torch.cat([parameter.grad.reshape(-1) for parameter in parameters])
    dist.all_reduce(flat)
    flat /= world_size()
    for parameter, gradient in zip(parameters, flat.split([p.numel() for p in parameters]), strict=True):
        parameter.grad.copy_(gradient.view_as(parameter))


def all_ranks_sum(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` summed over the ranks (without gradient); itself in one process."""
    if not active():
        return tensor
    total = tensor.detach().clone()
    dist.all_reduce(total)
    return total


def all_ranks_max(tensor: torch.Tensor) -> torch.Tensor:
    """The largest value of `tensor` over the ranks (without gradient); itself in one process."""
    if not active():
        return tensor
    largest = tensor.detach().clone()
    dist.all_reduce(largest, op=dist.ReduceOp.MAX)
    return largest


def average_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` over the ranks (without gradient); itself in one process. As a token mean's
    denominator it makes the ranks' averaged losses the global batch's: sum_r S_r / sum_r N_r."""
    return all_ranks_sum(tensor) / world_size() if active() else tensor


def share(batch_size: int) -> slice:
    """This rank's rows of a global batch of `batch_size` (equal shares, so means over shares average to
    the global mean)."""
    if batch_size % world_size():
        raise RLSFTError(
            f"learner.batch_size={batch_size} does not split evenly over {world_size()} processes; make it a multiple"
            f" of {world_size()}."
        )
    size = batch_size // world_size()
    return slice(rank() * size, (rank() + 1) * size)


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (making any dataset, pi_ref or cache it needs), then the other ranks,
    which find them made; in one process, the block."""
    if active() and not is_main():
        dist.barrier()
    yield
    if active() and is_main():
        dist.barrier()
