"""Learner throughput: gradient steps/s on Hopper-sized data, rlsft against a plain PyTorch loop.

What is measured: one gradient step = sample a batch of trajectories, compute the loss,
backward, optimiser step. Every variant trains the same 3x256 Gaussian MLP with Adam
(lr 4e-5), from the same seed, on the same data:

  plain_dense          hand-written loop on padded [N, T, ...] tensors; the MLP runs on all B*T
                       rows, padding included, and a masked per-trajectory mean NLL is taken
  plain_masked         the same loop, but the MLP runs on the real rows only (gather with the
                       mask, scatter back): the computation rlsft does, without rlsft
  rlsft_bc             rlsft's path: trajectory_buffer(...).sample() -> Learner(BC()).train_step
  rlsft_iw_sft_ema     the same with IWSFT() (q an EMA of the policy: one more forward pass)
  rlsft_iw_sft_policy  the same with IWSFT(q="policy") (q is the policy itself)
  rlsft_bc_bf16        rlsft_bc with learner.precision=bf16 (autocast, on CPU too)
  rlsft_bc_compiled    rlsft_bc with learner.compile=true (torch.compile of the loss and the
                       policy's log-prob in it; compiled during the untimed warm-up steps)

Data: 1000 synthetic trajectories shaped like D4RL Hopper (observation dim 11, action dim 3,
actions in [-1, 1]) with lengths uniform in [100, 1000], i.e. about 45% padding as in
medium-replay, built with rlsft.data.trajectories.flat_to_trajectories. The values are
seeded random numbers: throughput does not depend on them.

Method: all variants live in one process. After --warmup untimed steps each, --rounds rounds
run --steps timed steps of every variant in turn (the order rotating each round), so machine
noise hits all variants alike. A variant's steps/s is the median over rounds; each ratio is
the median of the per-round ratios, shown with their range as a measure of noise. No variant reads a value back to the host inside the
timed loop; on CUDA the clock stops after torch.cuda.synchronize(). The plain loops use fused
Adam, and on CUDA bf16 autocast, as the Learner does by default (precision="auto").

Reproduce (from the repository root, venv active):

    python benchmarks/learner_throughput.py                # defaults: 2-4 minutes on 2 CPU cores
    python benchmarks/learner_throughput.py --device cuda --steps 50 --warmup 10

The results table goes to --out (benchmarks/results/learner_throughput.md) and to stdout.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import math
import operator
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensordict
import torch
import torchrl
from tensordict import TensorDict
from torch import nn

from rlsft.algorithms.base import Algorithm
from rlsft.algorithms.bc import BC
from rlsft.algorithms.iw_sft import IWSFT
from rlsft.data.trajectories import flat_to_trajectories
from rlsft.learner import Learner, LearnerConfig, resolve_device
from rlsft.policies import frozen_log_prob
from rlsft.policies.gaussian_mlp import GaussianMLP
from rlsft.sources.trajectories import trajectory_buffer

OBSERVATION_DIM, ACTION_DIM = 11, 3  # Hopper
LR = 4e-5
SEED = 0

# (numerator, denominator, unit, target): the ratios the project targets; s/step ratios are costs.
RATIOS: list[tuple[str, str, str, tuple[str, float] | None]] = [
    ("rlsft_bc", "plain_masked", "steps/s", (">=", 1.0)),
    ("rlsft_bc", "plain_dense", "steps/s", None),
    ("rlsft_iw_sft_ema", "rlsft_bc", "s/step", ("<=", 1.4)),
    ("rlsft_iw_sft_policy", "rlsft_bc", "s/step", ("<=", 1.05)),
    ("rlsft_bc_bf16", "rlsft_bc", "steps/s", None),
    ("rlsft_bc_compiled", "rlsft_bc", "steps/s", None),
]

Step = Callable[[], torch.Tensor]  # one gradient step; returns the loss, left on the device


def hopper_trajectories(num: int, seed: int) -> TensorDict:
    """`num` random Hopper-shaped trajectories, lengths uniform in [100, 1000], in rlsft's layout."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(100, 1001, size=num)
    steps = int(lengths.sum())
    truncated = np.zeros(steps, dtype=bool)
    truncated[np.cumsum(lengths) - 1] = True
    return flat_to_trajectories(
        observation=rng.standard_normal((steps, OBSERVATION_DIM), dtype=np.float32),
        action=rng.uniform(-1.0, 1.0, (steps, ACTION_DIM)).astype(np.float32),
        reward=rng.standard_normal(steps, dtype=np.float32),
        terminated=np.zeros(steps, dtype=bool),
        truncated=truncated,
        lengths=lengths,
        source="synthetic Hopper",
    )


def plain_loop(trajectories: TensorDict, batch_size: int, device: torch.device, masked: bool) -> Step:
    """BC as a researcher would write it in plain PyTorch, on padded tensors held on `device`."""
    observations = trajectories["observation"].to(device)
    actions = trajectories["action"].to(device)
    masks = trajectories["mask"].to(device)
    torch.manual_seed(SEED)
    hidden = 256
    mean_net = nn.Sequential(
        nn.Linear(OBSERVATION_DIM, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, ACTION_DIM),
    ).to(device)  # fmt: skip
    log_std = nn.Parameter(torch.zeros(ACTION_DIM, device=device))
    optimizer = torch.optim.Adam([*mean_net.parameters(), log_std], lr=LR, fused=True)

    def log_prob(observation: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        mean = torch.tanh(mean_net(observation).float())
        clamped = log_std.clamp(-5.0, 2.0)
        return (-0.5 * ((action - mean) / clamped.exp()) ** 2 - clamped - 0.5 * math.log(2 * math.pi)).sum(-1)

    def step() -> torch.Tensor:
        index = torch.randint(len(masks), (batch_size,), device=device)
        observation, action, mask = observations[index], actions[index], masks[index]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            if masked:
                real = log_prob(observation[mask], action[mask])
                per_step = real.new_zeros(mask.shape).masked_scatter(mask, real)
            else:
                per_step = log_prob(observation, action)
            loss = (-(per_step * mask).sum(-1) / mask.sum(-1)).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def rlsft_loop(trajectories: TensorDict, algorithm: Algorithm, config: LearnerConfig) -> Step:
    """rlsft's training step, as rlsft.loop.fit runs it."""
    torch.manual_seed(SEED)
    learner = Learner(GaussianMLP(OBSERVATION_DIM, ACTION_DIM), algorithm, config)
    buffer = trajectory_buffer(trajectories, "uniform", config.batch_size, learner.device)
    return lambda: learner.train_step(buffer.sample())["loss"]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_step(step: Step, steps: int, device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return models[0] if models else platform.processor() or "CPU"


def report(
    times: dict[str, list[float]],
    args: argparse.Namespace,
    device: torch.device,
    trajectories: TensorDict,
    load: tuple[float, float],
) -> str:
    """The markdown results: environment, per-variant throughput, and the ratios against their targets."""
    mask = trajectories["mask"]
    rates = {name: [1 / t for t in ts] for name, ts in times.items()}
    versions = f"torch {torch.__version__}, tensordict {tensordict.__version__}, torchrl {torchrl.__version__}"
    real_steps = mask.sum(-1).float().mean().item()
    data = f"{len(mask)} synthetic Hopper trajectories (obs 11, act 3), T = {mask.shape[1]}"
    padding = f"{real_steps:.0f} real steps on average, {1 - real_steps / mask.shape[1]:.0%} padding"
    timing = f"{args.warmup} untimed steps, then {args.rounds} interleaved rounds x {args.steps} timed steps"
    lines = [
        "# Learner throughput",
        "",
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- device: {device} ({device_name(device)}), {versions}, {torch.get_num_threads()} threads",
        f"- load average (1 min) at start / end: {load[0]:.2f} / {load[1]:.2f} (other processes share the machine)",
        f"- data: {data}, {padding}",
        f"- step: {args.batch_size} trajectories, GaussianMLP 3x256, Adam lr {LR}; {timing}",
        "",
        "| variant | steps/s (median) | ms/step (median) | steps/s per round |",
        "|---|---:|---:|---|",
    ]
    for name, rate in rates.items():
        per_round = ", ".join(f"{r:.3g}" for r in rate)
        median_ms = 1e3 * statistics.median(times[name])
        lines.append(f"| {name} | {statistics.median(rate):.3g} | {median_ms:.1f} | {per_round} |")
    lines += ["", "| ratio | median of rounds | range over rounds | target | met |", "|---|---:|---|---|---|"]
    for numerator, denominator, unit, target in RATIOS:
        series = rates if unit == "steps/s" else times
        per_round = [n / d for n, d in zip(series[numerator], series[denominator])]
        value = statistics.median(per_round)
        spread = f"{min(per_round):.3f}-{max(per_round):.3f}"
        if target is None:
            goal = met = ""
        else:
            op, bound = target
            goal, met = f"{op} {bound}", "yes" if {">=": operator.ge, "<=": operator.le}[op](value, bound) else "no"
        lines.append(f"| {numerator} / {denominator}, {unit} | {value:.3f} | {spread} | {goal} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1, help="timed steps per variant per round")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps per variant before the first round")
    parser.add_argument("--rounds", type=int, default=6, help="interleaved timing rounds; the median is reported")
    parser.add_argument("--batch-size", type=int, default=256, help="trajectories per gradient step")
    parser.add_argument("--trajectories", type=int, default=1000, help="trajectories in the synthetic dataset")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present) | cpu | cuda | cuda:N")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/learner_throughput.md"))
    args = parser.parse_args()

    device = resolve_device(args.device)
    load_at_start = os.getloadavg()[0]
    trajectories = hopper_trajectories(args.trajectories, SEED)
    torch.manual_seed(SEED + 1)  # pi_ref: a different network than the trained policy
    with_ref = trajectories.clone()
    with_ref["ref_log_prob"] = frozen_log_prob(GaussianMLP(OBSERVATION_DIM, ACTION_DIM).to(device), trajectories)

    total_steps = args.warmup + args.rounds * args.steps
    config = LearnerConfig(
        steps=total_steps, batch_size=args.batch_size, warmup_steps=0, schedule="constant", lr=LR, device=str(device)
    )
    variants = {
        "plain_dense": plain_loop(trajectories, args.batch_size, device, masked=False),
        "plain_masked": plain_loop(trajectories, args.batch_size, device, masked=True),
        "rlsft_bc": rlsft_loop(trajectories, BC(), config),
        "rlsft_iw_sft_ema": rlsft_loop(with_ref, IWSFT(), config),
        "rlsft_iw_sft_policy": rlsft_loop(with_ref, IWSFT(q="policy"), config),
        "rlsft_bc_bf16": rlsft_loop(trajectories, BC(), dataclasses.replace(config, precision="bf16")),
        "rlsft_bc_compiled": rlsft_loop(trajectories, BC(), dataclasses.replace(config, compile=True)),
    }
    names = list(variants)
    for name in names:
        for _ in range(args.warmup):
            variants[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(args.rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(seconds_per_step(variants[name], args.steps, device))
            print(f"round {round_index + 1}/{args.rounds} {name}: {1 / times[name][-1]:.3g} steps/s", flush=True)

    table = report(times, args, device, trajectories, (load_at_start, os.getloadavg()[0]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
