"""How a rank waits for gloo's all-reduce: blocking at once against rlsft's `distributed.finish` (poll, then block).

Two processes (torchrun, gloo, one thread each) run what a data-parallel step is made of: compute (matrix
products on a share's activations), then an all-reduce of the tiny LM's gradient size (140k floats), then
the next step's compute. Each rank times its compute apart from the whole step, so what a wait costs the
compute after it shows, not only the wait itself. Three waits, in interleaved rounds:

  none      compute alone, no collective (both ranks at once): the compute's own speed
  blocking  dist.all_reduce, which blocks in the wait (what torch's DDP and rlsft did before)
  finish    rlsft.distributed.all_reduce: gloo's wait polled with sched_yield for up to POLL_SECONDS

Reproduce (from the repository root, venv active; under a minute on an otherwise idle 2-core machine):

    python benchmarks/gloo_wait.py

The results table goes to --out (benchmarks/results/gloo_wait.md) and to stdout. The machine must be
otherwise idle: the point is what two busy ranks on two cores do to each other.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist

from rlsft import distributed

GRADIENT_SIZE = 140_000  # floats: the tiny LM's parameters
WAITS = {
    "none": lambda tensor: None,
    "blocking": lambda tensor: dist.all_reduce(tensor),
    "finish": distributed.all_reduce,
}


def time_steps(wait: str, steps: int, work: int) -> tuple[float, float]:
    """Milliseconds a step takes, whole and in its compute alone (means over `steps`)."""
    activations, weight = torch.randn(2048, 256), torch.randn(256, 256)
    gradient = torch.randn(GRADIENT_SIZE)
    dist.barrier()
    compute = 0.0
    start = time.perf_counter()
    for _ in range(steps):
        begun = time.perf_counter()
        for _ in range(work):
            activations @ weight
        compute += time.perf_counter() - begun
        WAITS[wait](gradient)
    return 1e3 * (time.perf_counter() - start) / steps, 1e3 * compute / steps


def measure(arguments: argparse.Namespace) -> None:
    """On each rank: every wait, round after round; rank 0 writes the table."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    results: dict[str, list[tuple[float, float]]] = {wait: [] for wait in WAITS}
    for _ in range(arguments.rounds):
        for wait in WAITS:
            results[wait].append(time_steps(wait, arguments.steps, arguments.work))
    gathered = [None, None]
    dist.all_gather_object(gathered, results)
    if dist.get_rank() == 0:
        table = report(gathered, arguments)
        print(table)
        Path(arguments.out).write_text(table)
    dist.destroy_process_group()


def report(ranks: list[dict[str, list[tuple[float, float]]]], arguments: argparse.Namespace) -> str:
    def median(wait: str, column: int) -> float:
        return statistics.median(row[column] for rank in ranks for row in rank[wait])

    lines = [
        "# How a rank waits for gloo's all-reduce: blocking against polling (distributed.finish)",
        "",
        "- command: `python benchmarks/gloo_wait.py`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores; torch {torch.__version__}; 2 ranks, one thread each",
        f"- {arguments.rounds} rounds of {arguments.steps} steps; a step is {arguments.work} products of"
        f" [2048, 256] x [256, 256], then an all-reduce of {GRADIENT_SIZE} floats; medians over rounds and ranks",
        "",
        "| wait | step (ms) | its compute (ms) | compute against none | step against blocking |",
        "|---|---:|---:|---:|---:|",
    ]
    for wait in WAITS:
        step, compute = median(wait, 0), median(wait, 1)
        lines.append(
            f"| {wait} | {step:.1f} | {compute:.1f} | {compute / median('none', 1):.2f}x"
            f" | {step / median('blocking', 0):.2f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--work", type=int, default=20, help="matrix products a step")
    parser.add_argument("--out", default="benchmarks/results/gloo_wait.md")
    arguments = parser.parse_args()
    if "WORLD_SIZE" in os.environ:
        measure(arguments)
        return
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", __file__]
    sys.exit(subprocess.call([*command, *sys.argv[1:]], env=environment))


if __name__ == "__main__":
    main()
