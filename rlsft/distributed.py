"""Data-parallel runs under torchrun: this process's place among a run's processes, and the collectives it uses.

`torchrun --nproc-per-node N -m rlsft.cli train ... learner.distributed=ddp` starts N processes (ranks)
of one run, with RANK and WORLD_SIZE set. Every rank draws the same global batch and trains on its own
share of it, the gradients are averaged over the ranks after each backward pass, and rank 0 alone
writes the run's files. Outside torchrun every function here is the single-process identity.
"""

from __future__ import annotations

import datetime
import gc
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from rlsft.checkpoint import decode_state, encode_state
from rlsft.errors import RLSFTError

MODES = ("none", "ddp", "fsdp", "auto")


def launched_processes() -> int:
    """How many processes torchrun started for this run (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """This process's rank among those launched (0 without torchrun), before or after the process group."""
    return int(os.environ.get("RANK", "0"))


def adopt_slurm_tasks() -> None:
    """The tasks of one submitit job on SLURM (hydra's submitit launcher with tasks_per_node=N, or nodes=M)
    become the ranks of one run, as torchrun's processes are: submitit's helper sets torch's variables
    (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK) from SLURM's. Nothing under torchrun or one task."""
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm" or int(os.environ.get("SLURM_NTASKS", "1")) < 2:
        return
    if "RANK" in os.environ:  # torchrun inside the job already made the ranks
        return
    from submitit.helpers import TorchDistributedEnvironment  # a submitit job has submitit

    TorchDistributedEnvironment().export(set_cuda_visible_devices=False, overwrite=True)  # MASTER_PORT: kept


def resolve(mode: str) -> str:
    """`learner.distributed` for this launch: auto is ddp under torchrun with 2 or more processes, else none."""
    if mode == "auto":
        return "ddp" if launched_processes() > 1 else "none"
    if mode in ("ddp", "fsdp") and launched_processes() < 2:
        raise RLSFTError(
            f"learner.distributed={mode} needs 2 or more processes; launch the run with `torchrun --nproc-per-node N"
            " -m rlsft.cli train ...`, or set learner.distributed=none."
        )
    return mode


def local_device(device: torch.device) -> torch.device:
    """`device`, with a CUDA device without an index made this process's own GPU under torchrun (LOCAL_RANK)."""
    if device.type == "cuda" and device.index is None and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def start(device: torch.device) -> None:
    """Join the run's process group (gloo on CPU, NCCL on CUDA, each rank on its own GPU), once per process."""
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        # An hour, not torch's 10-30 minutes: the other ranks wait at stop() while rank 0 evaluates alone.
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(hours=1))


def stop() -> None:
    """Leave the process group, all ranks together: a rank that tore its connections down while rank 0 was
    still evaluating could abort at exit. What the caller let go of that still holds the group (a sharded
    module's reference cycles) is collected first, so that no gloo work outlives the group into the
    interpreter's shutdown, where freeing it aborts the process (pytorch/pytorch#179291)."""
    if dist.is_initialized():
        gc.collect()
        dist.barrier()
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


def all_reduce(tensor: torch.Tensor, op: dist.ReduceOp = dist.ReduceOp.SUM) -> None:
    """`tensor` reduced over the ranks in place, as dist.all_reduce, with gloo's wait polled (`finish`)."""
    finish(dist.all_reduce(tensor, op=op, async_op=True))


POLL_SECONDS = 0.05  # longer than a training step's collectives take; a longer wait (a peer evaluating) blocks


def finish(work: dist.Work) -> None:
    """Wait for a collective. On gloo (CPU) the wait first polls, yielding the core to gloo's own threads, for
    up to POLL_SECONDS, and blocks after: a rank that blocked at once in every step's all-reduce ran its next
    compute about a tenth slower on a 2-core virtual machine, its core idled and woken cold at each step
    (benchmarks/gloo_wait.py). NCCL's wait only orders CUDA streams, and blocks as it is."""
    if dist.get_backend() == "gloo":
        deadline = time.monotonic() + POLL_SECONDS
        while not work.is_completed() and time.monotonic() < deadline:
            os.sched_yield()
    work.wait()  # raises what the collective raised


def average_gradients(parameters: Iterable[torch.nn.Parameter], *scalars: torch.Tensor) -> list[torch.Tensor]:
    """Each gradient becomes its mean over the ranks: one all_reduce of all of them flattened, as DDP's
    buckets do it (a parameter without a gradient counts as a zero one, so every rank sends the same size).
    `scalars` ride in the same all_reduce, so a step's loss costs no round trip of its own: their means
    over the ranks are returned, in float32 (the sum is taken in float32 whatever the gradients' dtype)."""
    parameters = list(parameters)
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
    pieces = [parameter.grad.reshape(-1).float() for parameter in parameters]
    flat = torch.cat([*pieces, *(scalar.detach().reshape(1).float() for scalar in scalars)])
    all_reduce(flat)
    flat /= world_size()
    *gradients, means = flat.split([*(p.numel() for p in parameters), len(scalars)])
    for parameter, gradient in zip(parameters, gradients, strict=True):
        parameter.grad.copy_(gradient.view_as(parameter))
    return list(means.unbind())


def all_ranks_sum(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` summed over the ranks (without gradient); itself in one process."""
    if not active():
        return tensor
    total = tensor.detach().clone()
    all_reduce(total)
    return total


def all_ranks_max(tensor: torch.Tensor) -> torch.Tensor:
    """The largest value of `tensor` over the ranks (without gradient); itself in one process."""
    if not active():
        return tensor
    largest = tensor.detach().clone()
    all_reduce(largest, op=dist.ReduceOp.MAX)
    return largest


def average_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of `tensor` over the ranks (without gradient); itself in one process. As a token mean's
    denominator it makes the ranks' averaged losses the global batch's: sum_r S_r / sum_r N_r."""
    return all_ranks_sum(tensor) / world_size() if active() else tensor


def mean_std_over_ranks(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and unbiased std of every rank's `values` [N] together (without gradient); torch's in one process.
    One all-reduce of the count, sum and sum of squares, in float64, where the two-pass form took three: the
    variance (sum x^2 - n mean^2) / (n - 1) then loses a relative 1e-16 * mean^2 / var, nothing for
    advantages, which are centred or nearly so."""
    if not active():
        return values.mean(), values.std()
    exact = values.detach().double()
    count, total, squares = all_ranks_sum(
        torch.stack([exact.new_tensor(exact.numel()), exact.sum(), exact.square().sum()])
    )
    mean = total / count
    variance = ((squares - count * mean.square()) / (count - 1)).clamp(min=0)
    return mean.to(values.dtype), variance.sqrt().to(values.dtype)


def metrics_over_ranks(metrics: dict[str, torch.Tensor | float]) -> dict[str, torch.Tensor | float]:
    """A step's metrics over every rank's share, for the row rank 0 writes (all ranks call it): a `*_max` the
    largest, a `*_min` the smallest, every other tensor the mean over the ranks, in two all-reduces; itself in
    one process. What is already the global batch's (the loss, the gradient norm, the weights' statistics) is
    the same on every rank and stays as it is; a mean over equal shares (nll) becomes the global batch's; a
    share's per-token mean (PPO's clip_fraction) or effective sample size (ratio_ess) becomes the mean of the
    shares'. A collective: only a data-parallel learner's metrics, on every rank."""
    if not active():
        return metrics
    tensors = {name: value.detach().float().reshape(()) for name, value in metrics.items() if torch.is_tensor(value)}
    # min(x) = -max(-x): the extremes in one all-reduce
    sign = {name: -1.0 if name.endswith("_min") else 1.0 for name in tensors if name.endswith(("_max", "_min"))}
    averaged = [name for name in tensors if name not in sign]
    reduced = {}
    if averaged:
        means = all_ranks_sum(torch.stack([tensors[name] for name in averaged])) / world_size()
        reduced.update(zip(averaged, means, strict=True))
    if sign:
        extremes = all_ranks_max(torch.stack([sign[name] * tensors[name] for name in sign]))
        reduced.update({name: sign[name] * value for name, value in zip(sign, extremes, strict=True)})
    return {name: reduced.get(name, value) for name, value in metrics.items()}


def rows_of_all_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's `tensor` [N, ...], concatenated in rank order (equal N on every rank); itself in one process.
    A rollout's envs are split over the ranks in order, so this is the rollout one process would hold."""
    if not active():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(world_size())]
    finish(dist.all_gather(parts, tensor.contiguous(), async_op=True))
    return torch.cat(parts)


def rank_seed(seed: int) -> int:
    """This rank's own seed, for what each rank draws by itself (its actions, its completions): `seed` on rank
    0 (one process's stream), and for the others a stream derived from (seed, rank), not seed + rank, which
    would repeat another seed's rank 0."""
    return seed if rank() == 0 else int(np.random.SeedSequence([seed, rank()]).generate_state(1)[0])


def gather_on_main(state: Any) -> list[Any] | None:
    """Every rank's `state` (tensors and plain containers), loaded on the CPU in rank order on rank 0, None on
    the others; [state] in one process. What each rank alone holds (its envs' episodes, its RNG) reaches the
    checkpoint. Sent as bytes (`encode_state`), padded to the longest: collectives carry tensors."""
    if not active():
        return [state]
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    data = encode_state(state).to(device)
    sizes = [torch.zeros((), dtype=torch.long, device=device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor(len(data), device=device))
    longest = int(max(sizes))
    parts = [torch.empty(longest, dtype=torch.uint8, device=device) for _ in range(world_size())]
    dist.all_gather(parts, torch.nn.functional.pad(data, (0, longest - len(data))))
    return [decode_state(part[: int(size)]) for part, size in zip(parts, sizes, strict=True)] if is_main() else None


def share(batch_size: int, setting: str = "learner.batch_size", data_parallel: bool = True) -> slice:
    """This rank's rows of a global batch of `batch_size` (equal shares, so means over shares average to
    the global mean; without data_parallel, every row); `setting` names the option that sets the size, for
    the error when it does not split."""
    if not data_parallel:
        return slice(0, batch_size)
    if batch_size % world_size():
        raise RLSFTError(
            f"{setting}={batch_size} does not split evenly over {world_size()} processes; make it a multiple"
            f" of {world_size()}."
        )
    size = batch_size // world_size()
    return slice(rank() * size, (rank() + 1) * size)


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (making any dataset, pi_ref or cache it needs), then the other ranks,
    which find them made; in one process, the block. Should rank 0 fail (a bad setting), the others still
    go on to the block, and each fails with that one sentence instead of waiting for rank 0 forever."""
    if active() and not is_main():
        dist.barrier()
    try:
        yield
    finally:
        if active() and is_main():
            dist.barrier()
