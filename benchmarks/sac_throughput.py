"""SAC's speed on this machine, to plan its 1M-step runs: `rlsft train algorithm=sac` steps/s against PPO's.

What is measured: fresh runs of `rlsft train algorithm=sac env=<env>` at CleanRL's sizes (actor and
critics 2x256, 256 transitions a step, one env step and one update a step), eager and compiled
(`learner.compile=true`; its first rows, which hold the compilation, left out), and, as the baseline in
the same session, `rlsft train algorithm=ppo env=<env>` (CleanRL's PPO: 8 envs x 256 steps a rollout,
10 epochs of 32 minibatches), each process with one thread (OMP_NUM_THREADS=1). A run's speed is read
from its own train.csv, between its first and last logged rows (training clock, evaluations
excluded): SAC's env steps (= updates) per second after the random warm-up, PPO's env frames per
second over its whole training clock. From those: the hours 1M env steps take each, and the ratio.
The floor beside them: the same update written in plain PyTorch (CleanRL's sac_continuous_action, eager:
two critics and their targets, the tanh-Gaussian actor, the temperature, 256 transitions drawn from a
tensor), with no env, no logging and no replay-buffer library, timed in a fresh process of one thread;
rlsft's eager env steps/s over it is what the env, the replay buffer and rlsft's learner add.
--rounds rounds, each running every env's SAC, PPO and plain update in turn; a speed is the median over
rounds, with its range.

Reproduce (from the repository root, venv active):

    python benchmarks/sac_throughput.py                  # about 9 minutes on 2 cores

The machine should be otherwise idle; the table goes to --out and stdout.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPOSITORY = Path(__file__).resolve().parents[1]
ENVS = ("hopper", "halfcheetah", "walker2d")
# SAC: 500 random steps, then `steps` updates; PPO: two rollouts of 2048 frames (640 gradient steps)
SAC = ["algorithm=sac", "algorithm.replay.learning_starts=500"]
ALGORITHMS = {
    "sac": lambda steps: [*SAC, f"learner.steps={steps}", "learner.compile=false"],
    "sac_compiled": lambda steps: [*SAC, f"learner.steps={steps}", "learner.compile=true"],
    "ppo": lambda steps: ["algorithm=ppo", "algorithm.rollout.frames=4096"],
}
SKIPPED_ROWS = {"sac": 1, "sac_compiled": 5}  # the compiled run's first rows hold its compilation
DIMS = {"hopper": (11, 3), "halfcheetah": (17, 6), "walker2d": (17, 6)}  # observation, action sizes

# CleanRL's SAC update in plain PyTorch, run as `python -c PLAIN <obs dim> <action dim> <updates>`: prints
# updates/s after 50 warm-up updates.
PLAIN = """
import sys, time, torch, torch.nn.functional as F
from torch import nn
torch.set_num_threads(1)
torch.manual_seed(0)
O, A, N = (int(x) for x in sys.argv[1:4])
H, B, SIZE = 256, 256, 100_000
def mlp(i, o):
    return nn.Sequential(nn.Linear(i, H), nn.ReLU(), nn.Linear(H, H), nn.ReLU(), nn.Linear(H, o))
q1, q2, actor = mlp(O + A, 1), mlp(O + A, 1), mlp(O, 2 * A)
q1t, q2t = mlp(O + A, 1), mlp(O + A, 1)
q1t.load_state_dict(q1.state_dict()); q2t.load_state_dict(q2.state_dict())
log_alpha = torch.zeros(1, requires_grad=True)
q_opt = torch.optim.Adam([*q1.parameters(), *q2.parameters()], lr=1e-3)
actor_opt, alpha_opt = torch.optim.Adam(actor.parameters(), lr=3e-4), torch.optim.Adam([log_alpha], lr=1e-3)
obs, act, rew, nxt = torch.randn(SIZE, O), torch.rand(SIZE, A) * 2 - 1, torch.randn(SIZE), torch.randn(SIZE, O)
def act_of(o):
    mean, log_std = actor(o).chunk(2, -1)
    log_std = -5 + 3.5 * (torch.tanh(log_std) + 1)
    x = mean + log_std.exp() * torch.randn_like(mean)
    y = torch.tanh(x)
    normal = -0.5 * ((x - mean) / log_std.exp()) ** 2 - log_std - 0.9189385
    return y, (normal - torch.log(1 - y.pow(2) + 1e-6)).sum(-1)
def update():
    i = torch.randint(0, SIZE, (B,))
    o, a, r, n = obs[i], act[i], rew[i], nxt[i]
    with torch.no_grad():
        na, nlogp = act_of(n)
        x = torch.cat([n, na], -1)
        target = r + 0.99 * (torch.min(q1t(x), q2t(x)).squeeze(-1) - log_alpha.exp() * nlogp)
    x = torch.cat([o, a], -1)
    q_loss = F.mse_loss(q1(x).squeeze(-1), target) + F.mse_loss(q2(x).squeeze(-1), target)
    q_opt.zero_grad(); q_loss.backward(); q_opt.step()
    pa, logp = act_of(o)
    x = torch.cat([o, pa], -1)
    actor_loss = (log_alpha.exp().detach() * logp - torch.min(q1(x), q2(x)).squeeze(-1)).mean()
    actor_opt.zero_grad(); actor_loss.backward(); actor_opt.step()
    alpha_loss = (-log_alpha.exp() * (logp.detach() - A)).mean()
    alpha_opt.zero_grad(); alpha_loss.backward(); alpha_opt.step()
    with torch.no_grad():
        for net, target_net in ((q1, q1t), (q2, q2t)):
            torch._foreach_lerp_(list(target_net.parameters()), list(net.parameters()), 0.005)
for _ in range(50):
    update()
start = time.perf_counter()
for _ in range(N):
    update()
print(N / (time.perf_counter() - start))
"""


def speed(algorithm: str, env: str, steps: int, folder: Path) -> float:
    """One fresh run's env steps per second of training clock, from its train.csv."""
    run_dir = folder / f"{algorithm}-{env}"
    settings = [*ALGORITHMS[algorithm](steps), f"env={env}", f"run_dir={run_dir}", "evaluation.every=0",
                "evaluation.episodes=1", "log_every=20", "progress=false", "budget=cpu"]  # fmt: skip
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "rlsft.cli", "train", *settings], check=True, env=environment,
                   stdout=subprocess.DEVNULL, cwd=REPOSITORY)  # fmt: skip
    with (run_dir / "train.csv").open() as file:
        rows = list(csv.DictReader(file))
    first, last = rows[SKIPPED_ROWS.get(algorithm, 0)], rows[-1]
    if algorithm == "ppo":  # every frame over the whole training clock: its collections and its updates
        return float(last["frames"]) / float(last["seconds"])
    return (float(last["step"]) - float(first["step"])) / (float(last["seconds"]) - float(first["seconds"]))


def plain_speed(env: str, updates: int) -> float:
    """Updates per second of PLAIN, CleanRL's update in plain PyTorch, in a fresh one-thread process."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    arguments = [*(str(size) for size in DIMS[env]), str(updates)]
    done = subprocess.run([sys.executable, "-c", PLAIN, *arguments], check=True, env=environment,
                          capture_output=True, text=True)  # fmt: skip
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=600, help="SAC's updates a run")
    parser.add_argument("--out", type=Path, default=REPOSITORY / "benchmarks/results/sac_throughput.md")
    args = parser.parse_args()
    speeds = {(a, e): [] for a in (*ALGORITHMS, "plain") for e in ENVS}
    for round_index in range(args.rounds):
        for env in ENVS:
            for algorithm in ALGORITHMS:
                with tempfile.TemporaryDirectory() as folder:
                    speeds[algorithm, env].append(speed(algorithm, env, args.steps, Path(folder)))
                print(f"round {round_index}: {algorithm} {env} {speeds[algorithm, env][-1]:.1f}/s", file=sys.stderr)
            speeds["plain", env].append(plain_speed(env, args.steps))
            print(f"round {round_index}: plain {env} {speeds['plain', env][-1]:.1f}/s", file=sys.stderr)
    lines = [
        "# SAC's speed, against PPO's, to plan 1M-step runs",
        "",
        "- command: `python benchmarks/sac_throughput.py"
        + (f" --rounds {args.rounds}" if args.rounds != 3 else "")
        + "`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, CPU only; torch {torch.__version__};"
        " one thread a run",
        f"- {args.rounds} interleaved rounds; medians over rounds (range)",
        "",
        "| env | SAC env steps/s (one update each) | compiled (learner.compile=true) | compiled / eager |"
        " plain-PyTorch updates/s (no env) | eager / plain | PPO env frames/s | PPO / compiled SAC |"
        " hours for 1M steps: SAC compiled | PPO |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for env in ENVS:
        sac, compiled, ppo, plain = (statistics.median(speeds[a, env]) for a in (*ALGORITHMS, "plain"))
        spread = {a: f"({min(speeds[a, env]):.1f}-{max(speeds[a, env]):.1f})" for a in ("sac", "sac_compiled", "plain")}
        lines.append(
            f"| {env} | {sac:.1f} {spread['sac']} | {compiled:.1f} {spread['sac_compiled']} | {compiled / sac:.2f}x |"
            f" {plain:.1f} {spread['plain']} | {sac / plain:.2f}x | {ppo:.0f} | {ppo / compiled:.1f}x |"
            f" {1e6 / compiled / 3600:.1f} | {1e6 / ppo / 3600:.2f} |"
        )
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
