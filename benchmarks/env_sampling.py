"""Environment sampling throughput: env steps/s of rlsft's PPO data path against a raw gymnasium loop.

What is measured: collecting one batch of --frames environment steps with a policy. Every
variant draws its actions from the same rlsft ActorCritic (`explore`: a sampled action and
its log-prob, from a float32 observation tensor) and clips them to [-1, 1], so all of them
pay for the same policy forward. For each num_envs in --num-envs:

  raw_gymnasium          a hand-written loop over gymnasium.vector.SyncVectorEnv of num_envs
                         copies (SAME_STEP autoreset: no reset calls to write), storing the data PPO needs
                         (observation, next observation with the final observation swapped in
                         at episode ends, action, log-prob, reward, terminated, truncated)
  rlsft_collector        rlsft's own object: RolloutSource(...).collect(), the torchrl
                         Collector over VectorControlEnv(...) (torchrl resets the finished
                         envs), with frames_per_batch = num_envs * frames_per_env
  rlsft_collector_multi  RolloutSource(..., workers=--workers), as PPO's algorithm.rollout.workers:
                         torchrl's MultiSyncCollector, each worker process owning num_envs /
                         workers envs (num_envs a multiple of --workers only)
  independent_processes  --workers unconnected processes, each running its own rlsft_collector
                         with num_envs / workers envs at the same time: the machine's ceiling
                         for process parallelism, which rlsft_collector_multi is measured against

plus, once, raw_gymnasium_single: a plain gymnasium.make env (no vector env), reset by hand on
done, storing the same data: the 1-env baseline without SyncVectorEnv's own overhead.

SyncVectorEnv steps its envs one after another in one process, so raw_gymnasium and
rlsft_collector can only gain from a larger num_envs by batching the policy forward and the
per-step Python overhead; only rlsft_collector_multi and independent_processes use more than
one core. Their scaling with the cores is their steps/s over rlsft_collector's with the same
work per process (num_envs / workers envs), linear at --workers. The policy runs with
torch.set_num_threads(1) in every variant and worker.

Method: one process drives all variants. Each first collects one untimed batch (env
creation, spec checks, worker start-up). Then come --rounds rounds, and in each round every
(num_envs, variant) pair collects one timed batch, the variant order rotating each round, so
machine noise hits all variants alike. (A MultiSyncCollector's workers wait, idle, until the
next batch is asked for, so they do not slow the variant timed after them.) A variant's
steps/s is the median over rounds; each ratio is the median of the per-round ratios, shown
with their range as a measure of noise.

Reproduce (from the repository root, venv active):

    python benchmarks/env_sampling.py                      # Hopper-v5, num_envs 1 2 4 8, 4096 frames, 3 rounds
    python benchmarks/env_sampling.py --workers 8 --num-envs 1 8 16 --frames 16384   # a 16-core machine

The results table goes to --out (benchmarks/results/env_sampling.md) and to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium
import mujoco
import numpy as np
import tensordict
import torch
import torchrl

from rlsft.envs.control.mujoco import env_dims
from rlsft.policies.actor_critic import ActorCritic
from rlsft.sources.rollouts import RolloutSource

SEED = 0
TARGET = 0.8  # rlsft_collector / raw_gymnasium, steps/s

Collect = Callable[[], int]  # collects one batch; returns the number of env steps taken


class StepRecord:
    """Preallocated [frames_per_env, num_envs] tensors of what PPO needs, as a hand-written loop keeps them."""

    def __init__(self, env_id: str, num_envs: int, frames_per_env: int) -> None:
        observation_dim, action_dim = env_dims(env_id)
        shape = (frames_per_env, num_envs)
        self.observation, self.next_observation = (
            torch.empty(*shape, observation_dim),
            torch.empty(*shape, observation_dim),
        )
        self.action, self.log_prob, self.reward = (
            torch.empty(*shape, action_dim),
            torch.empty(shape),
            torch.empty(shape),
        )
        self.terminated, self.truncated = torch.empty(shape, dtype=torch.bool), torch.empty(shape, dtype=torch.bool)

    def act(self, policy: ActorCritic, t: int, observation: np.ndarray) -> np.ndarray:
        """Stores the observation, samples the action and its log-prob, returns the clipped action."""
        self.observation[t] = torch.from_numpy(observation)
        self.action[t], self.log_prob[t] = policy.explore(self.observation[t])
        return self.action[t].clamp(-1.0, 1.0).numpy()

    def outcome(self, t: int, next_observation, reward, terminated, truncated) -> None:
        self.next_observation[t] = torch.from_numpy(np.asarray(next_observation))
        self.reward[t] = torch.as_tensor(reward)
        self.terminated[t], self.truncated[t] = torch.as_tensor(terminated), torch.as_tensor(truncated)


def raw_gymnasium(policy: ActorCritic, env_id: str, num_envs: int, frames_per_env: int) -> Collect:
    """A plain SyncVectorEnv loop that keeps what PPO needs, as one would write it without torchrl."""
    envs = gymnasium.vector.SyncVectorEnv(
        [lambda: gymnasium.make(env_id)] * num_envs, autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP
    )
    record = StepRecord(env_id, num_envs, frames_per_env)
    observation = envs.reset(seed=SEED)[0]

    def collect() -> int:
        nonlocal observation
        for t in range(frames_per_env):
            observation, reward, terminated, truncated, info = envs.step(record.act(policy, t, observation))
            record.outcome(t, observation, reward, terminated, truncated)
            if "final_obs" in info:  # the reset observation replaced the final one at episode ends
                for i in np.flatnonzero(info["_final_obs"]):
                    record.next_observation[t, i] = torch.from_numpy(info["final_obs"][i])
        return frames_per_env * num_envs

    return collect


def raw_gymnasium_single(policy: ActorCritic, env_id: str, frames: int) -> Collect:
    """The simplest loop: one gymnasium.make env, reset by hand at episode ends, keeping what PPO needs."""
    env = gymnasium.make(env_id)
    record = StepRecord(env_id, 1, frames)
    observation = env.reset(seed=SEED)[0][None]

    def collect() -> int:
        nonlocal observation
        for t in range(frames):
            next_observation, reward, terminated, truncated, _ = env.step(record.act(policy, t, observation)[0])
            record.outcome(t, next_observation, reward, terminated, truncated)
            observation = (env.reset()[0] if terminated or truncated else next_observation)[None]
        return frames

    return collect


def rollout_source(policy: ActorCritic, env_id: str, num_envs: int, frames_per_env: int, workers: int) -> RolloutSource:
    return RolloutSource(
        policy, env_id, num_envs, frames_per_env, epochs=1, minibatches=1, gamma=0.99, lmbda=0.95,
        normalize_rewards=True, device=torch.device("cpu"), seed=SEED, workers=workers,
    )  # fmt: skip


def rlsft_collector(policy: ActorCritic, env_id: str, num_envs: int, frames_per_env: int) -> Collect:
    """rlsft's RolloutSource, timed on its collector iterator (GAE and minibatching excluded)."""
    source = rollout_source(policy, env_id, num_envs, frames_per_env, workers=1)
    return lambda: source.collect().numel()


def independent_worker(env_id: str, num_envs: int, frames_per_env: int, commands, results) -> None:
    """One process of independent_collectors: its own policy (the same seeded weights) and RolloutSource."""
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    collect = rlsft_collector(ActorCritic(*env_dims(env_id)), env_id, num_envs, frames_per_env)
    while commands.get():
        results.put(collect())


def independent_collectors(
    env_id: str, num_envs: int, frames_per_env: int, workers: int
) -> tuple[Collect, Callable[[], None]]:
    """The machine's ceiling for process parallelism: `workers` unconnected processes, each collecting
    its own rlsft_collector batch of num_envs / workers envs at the same time; also their shutdown."""
    context = multiprocessing.get_context("spawn")
    commands, results = context.Queue(), context.Queue()
    processes = [
        context.Process(
            target=independent_worker, args=(env_id, num_envs // workers, frames_per_env, commands, results)
        )
        for _ in range(workers)
    ]
    for process in processes:
        process.start()

    def collect() -> int:
        for _ in processes:
            commands.put(True)
        return sum(results.get() for _ in processes)

    def shutdown() -> None:
        for _ in processes:
            commands.put(False)
        for process in processes:
            process.join()

    return collect, shutdown


def rlsft_collector_multi(
    policy: ActorCritic, env_id: str, num_envs: int, frames_per_env: int, workers: int
) -> tuple[Collect, Callable[[], None]]:
    """RolloutSource with `workers` processes (PPO's algorithm.rollout.workers): torchrl's
    MultiSyncCollector, its policy copy refreshed before each batch; also its shutdown."""
    source = rollout_source(policy, env_id, num_envs, frames_per_env, workers)
    return lambda: source.collect().numel(), source.close


def timed_rounds(variants: dict[tuple[int, str], Collect], rounds: int) -> dict[tuple[int, str], list[float]]:
    """Steps/s of each variant in each round, after one untimed batch each; the order rotates every round."""
    for collect in variants.values():
        collect()
    keys = list(variants)
    rates: dict[tuple[int, str], list[float]] = {key: [] for key in keys}
    for round_index in range(rounds):
        shift = round_index % len(keys)
        for key in keys[shift:] + keys[:shift]:
            start = time.perf_counter()
            steps = variants[key]()
            rates[key].append(steps / (time.perf_counter() - start))
            print(
                f"round {round_index + 1}/{rounds} num_envs={key[0]} {key[1]}: {rates[key][-1]:.0f} steps/s", flush=True
            )
    return rates


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return models[0] if models else platform.processor() or "CPU"


def ratio_cells(ratio: list[float]) -> str:
    """'median | range' of per-round ratios, for a markdown row."""
    return f"{statistics.median(ratio):.2f} | {min(ratio):.2f}-{max(ratio):.2f}"


def report(rates: dict[tuple[int, str], list[float]], args: argparse.Namespace, load: tuple[float, float]) -> str:
    """The markdown results: environment, steps/s and scaling per variant, and the target ratio."""
    versions = (
        f"torch {torch.__version__}, tensordict {tensordict.__version__}, torchrl {torchrl.__version__}, "
        f"gymnasium {gymnasium.__version__}, mujoco {mujoco.__version__}, numpy {np.__version__}"
    )
    median = {key: statistics.median(rate) for key, rate in rates.items()}
    lines = [
        "# Environment sampling throughput",
        "",
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {cpu_name()}, {os.cpu_count()} cores; {versions}",
        f"- load average (1 min) at start / end: {load[0]:.2f} / {load[1]:.2f} (other processes share the machine)",
        f"- env: {args.env}; {args.frames} env steps per timed batch; 1 untimed batch, then {args.rounds} "
        "interleaved rounds; torch.set_num_threads(1) for the policy in every process",
        f"- rlsft_collector_multi: {args.workers} worker processes",
        "",
        "| num_envs | variant | steps/s (median) | over num_envs = 1 | steps/s per round |",
        "|---:|---|---:|---:|---|",
    ]
    for (num_envs, name), rate in rates.items():
        base = rates.get((1, name))
        scaling = f"{median[(num_envs, name)] / statistics.median(base):.2f}" if base else ""
        per_round = ", ".join(f"{r:.0f}" for r in rate)
        lines.append(f"| {num_envs} | {name} | {median[(num_envs, name)]:.0f} | {scaling} | {per_round} |")
    lines += [
        "",
        f"| num_envs | rlsft_collector / raw_gymnasium (target >= {TARGET}) | range | met |",
        "|---:|---:|---|---|",
    ]
    rows = [(str(n), n, "raw_gymnasium") for n in args.num_envs] + [
        ("1, against one plain env", 1, "raw_gymnasium_single")
    ]
    for label, num_envs, baseline in rows:
        ratio = [c / r for c, r in zip(rates[(num_envs, "rlsft_collector")], rates[(num_envs, baseline)])]
        lines.append(f"| {label} | {ratio_cells(ratio)} | {'yes' if statistics.median(ratio) >= TARGET else 'no'} |")
    lines += [
        "",
        f"Process scaling over {args.workers} processes, each with num_envs / {args.workers} envs: the steps/s of "
        "rlsft_collector_multi and of independent_processes (the machine's ceiling) over rlsft_collector's "
        f"with the same work in one process (linear = {args.workers}.00); rlsft_collector_multi over "
        "independent_processes (what torchrl's multi-process collection keeps of the ceiling); and "
        "rlsft_collector_multi over rlsft_collector with the same num_envs (the gain for a fixed env count).",
        "",
        "| num_envs | envs per process | multi / same work | range | independent / same work | range "
        "| multi / independent | range | multi / same num_envs | range |",
        "|---:|---:|---:|---|---:|---|---:|---|---:|---|",
    ]
    for num_envs in multi_process_sizes(args):
        multi, independent = rates[(num_envs, "rlsft_collector_multi")], rates[(num_envs, "independent_processes")]
        per_process = num_envs // args.workers
        same_work = rates.get((per_process, "rlsft_collector"))
        cells = [
            ratio_cells([m / c for m, c in zip(multi, same_work)]) if same_work else "(not measured) | ",
            ratio_cells([i / c for i, c in zip(independent, same_work)]) if same_work else "(not measured) | ",
            ratio_cells([m / i for m, i in zip(multi, independent)]),
            ratio_cells([m / c for m, c in zip(multi, rates[(num_envs, "rlsft_collector")])]),
        ]
        lines.append(f"| {num_envs} | {per_process} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def multi_process_sizes(args: argparse.Namespace) -> list[int]:
    """The num_envs that split evenly over the worker processes."""
    return [n for n in args.num_envs if n % args.workers == 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="Hopper-v5", help="gymnasium env id")
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 2, 4, 8], help="vector env sizes to sweep")
    parser.add_argument("--frames", type=int, default=4096, help="env steps per timed batch")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds; the median is reported")
    parser.add_argument(
        "--workers", type=int, default=2, help="processes of rlsft_collector_multi (2: this machine's cores)"
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/env_sampling.md"))
    args = parser.parse_args()
    if 1 not in args.num_envs:
        parser.error("--num-envs must include 1, the base of the scaling column")

    torch.set_num_threads(1)
    load_at_start = os.getloadavg()[0]
    torch.manual_seed(SEED)
    policy = ActorCritic(*env_dims(args.env))
    variants: dict[tuple[int, str], Collect] = {
        (1, "raw_gymnasium_single"): raw_gymnasium_single(policy, args.env, args.frames)
    }
    for num_envs in args.num_envs:
        frames_per_env = args.frames // num_envs
        variants[(num_envs, "raw_gymnasium")] = raw_gymnasium(policy, args.env, num_envs, frames_per_env)
        variants[(num_envs, "rlsft_collector")] = rlsft_collector(policy, args.env, num_envs, frames_per_env)
    shutdowns = []
    for num_envs in multi_process_sizes(args):
        collect, shutdown = rlsft_collector_multi(policy, args.env, num_envs, args.frames // num_envs, args.workers)
        variants[(num_envs, "rlsft_collector_multi")] = collect
        shutdowns.append(shutdown)
        collect, shutdown = independent_collectors(args.env, num_envs, args.frames // num_envs, args.workers)
        variants[(num_envs, "independent_processes")] = collect
        shutdowns.append(shutdown)
    rates = timed_rounds(variants, args.rounds)
    for shutdown in shutdowns:
        shutdown()

    table = report(rates, args, (load_at_start, os.getloadavg()[0]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
