"""Suite `bound`: method.md §2's bounds, exactly, on tasks whose trajectories can all be enumerated.

For a policy p(.;theta), a reference pi_ref that made the data and any q (Jensen: x >= 1 + log x),

    J(theta)            = sum_tau p(tau;theta) R(tau)
    B_sft(theta)        = sum_tau pi_ref(tau) R(tau) (1 + log p(tau;theta) - log pi_ref(tau))   <= J
    B_iw(theta; q)      = sum_tau q(tau) R(tau) (1 + log p(tau;theta) - log q(tau))             <= J

with the constants kept, so each is a bound on J itself; B_iw = J when q = p(.;theta), and the closer q
is to p the tighter it gets (the dynamics' probabilities cancel in every ratio). Each run trains with
rlsft's own SFT or iw-SFT loss and learner on D+ as one exact batch (every passing trajectory, as often
as pi_ref and the dynamics make it), and records J and both bounds after every gradient step; for SFT,
B_iw uses an EMA of theta, as iw-SFT's default q would.

Tasks: the two-armed bandit of method.md §5 (left pays 1 with probability 1/2, right always), and
sequences of `length` actions out of `actions`, rewarded 1 when their sum reaches `threshold`, under a
tabular softmax policy over the prefix so far (every prefix its own state).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from rlsft.algorithms.iw_sft import IWSFT
from rlsft.algorithms.sft import SFT
from rlsft.bench.report import environment
from rlsft.errors import RLSFTError
from rlsft.learner import Learner, LearnerConfig
from rlsft.options import checked_options

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file backend)


@dataclass
class Task:
    """Every trajectory: its states and actions [N, L], the dynamics' probability and reward [N]."""

    name: str
    states: torch.Tensor
    actions: torch.Tensor
    dynamics: torch.Tensor
    reward: torch.Tensor
    num_states: int
    num_actions: int


def bandit() -> Task:
    # (arm, outcome): left pays 1 or 0 with probability 1/2 each, right pays 1 always
    return Task("bandit", torch.zeros(3, 1, dtype=torch.long), torch.tensor([[0], [0], [1]]),
                torch.tensor([0.5, 0.5, 1.0]), torch.tensor([1.0, 0.0, 1.0]), 1, 2)  # fmt: skip


def sequences(length: int, actions: int, threshold: int) -> Task:
    """All actions**length sequences; the state before step t is the prefix, numbered breadth first."""
    paths = torch.tensor(list(itertools.product(range(actions), repeat=length)))
    states = torch.zeros_like(paths)
    for t in range(1, length):  # prefixes of length t are numbered from sum_{k<t} actions**k
        offset = sum(actions**k for k in range(t))
        prefix = sum(paths[:, k] * actions ** (t - 1 - k) for k in range(t))
        states[:, t] = offset + prefix
    reward = (paths.sum(-1) >= threshold).float()
    name = f"sequences of {length} actions out of {actions}, rewarded when their sum reaches {threshold}"
    return Task(name, states, paths, torch.ones(len(paths)), reward, sum(actions**k for k in range(length)), actions)


class TabularPolicy(nn.Module):
    """A softmax per state; logits 0 make it uniform, which is pi_ref."""

    def __init__(self, num_states: int, num_actions: int) -> None:
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(num_states, num_actions))

    def log_prob(self, batch: TensorDict) -> torch.Tensor:
        table = torch.log_softmax(self.logits, -1)
        return table[batch["state"], batch["action"]] * batch["mask"]

    @torch.no_grad()
    def trajectory_log_prob(self, task: Task) -> torch.Tensor:
        """log p(tau) [N] over the policy's steps (the dynamics' factor cancels in every ratio)."""
        table = torch.log_softmax(self.logits, -1)
        return table[task.states, task.actions].sum(-1)


def curated_batch(task: Task, reference: TabularPolicy) -> TensorDict:
    """D+ exactly: each rewarded trajectory repeated in proportion to pi_ref(tau) * dynamics(tau)."""
    mass = reference.trajectory_log_prob(task).exp() * task.dynamics * task.reward
    kept = mass > 0
    repeats = (mass[kept] / mass[kept].min()).round().long()
    index = torch.nonzero(kept).squeeze(-1).repeat_interleave(repeats)
    batch = TensorDict({"state": task.states[index], "action": task.actions[index],
                        "mask": torch.ones(len(index), task.actions.shape[1], dtype=torch.bool)}, batch_size=[len(index)])  # fmt: skip
    batch["ref_log_prob"] = reference.log_prob(batch).detach()
    return batch


def objective_and_bounds(task: Task, policy: nn.Module, reference: nn.Module, q: nn.Module) -> dict[str, float]:
    """J, B_sft and B_iw(q) of the module docstring, exactly."""
    log_p, log_ref, log_q = (m.trajectory_log_prob(task) for m in (policy, reference, q))
    mass = task.dynamics * task.reward  # the dynamics and the reward of each trajectory

    def bound(log_data: torch.Tensor) -> float:
        return float((log_data.exp() * mass * (1 + log_p - log_data)).sum())

    return {"J": float((log_p.exp() * mass).sum()), "B_sft": bound(log_ref), "B_iw": bound(log_q)}


METHODS = ("sft", "iw_policy", "iw_ema", "iw_copy")  # SFT, and iw-SFT with q = the policy, its EMA, a copy


def learner_config(steps: int, lr: float) -> LearnerConfig:
    """Adam at a constant `lr` for `steps` steps on the CPU, checked as any run's learner is (one sentence)."""
    settings = {"steps": steps, "lr": lr, "warmup_steps": 0, "schedule": "constant", "device": "cpu"}
    return LearnerConfig.from_config(OmegaConf.create(settings), where="bound")


def train(task: Task, method: str, steps: int, lr: float, ema_decay: float, copy_every: int) -> list[dict]:
    """J and the bounds after each of `steps` gradient steps of `method`, one of METHODS."""
    torch.manual_seed(0)
    reference, policy = (
        TabularPolicy(task.num_states, task.num_actions),
        TabularPolicy(task.num_states, task.num_actions),
    )
    length = task.actions.shape[1]
    if method == "sft":
        algorithm = SFT()
    else:  # alpha = L undoes the length average: the weights are exactly q(tau) / pi_ref(tau)
        q = method.removeprefix("iw_")
        algorithm = IWSFT(alpha=float(length), w_max=1e6, self_normalize=False, q=q, ema_decay=ema_decay,
                          copy_every=copy_every)  # fmt: skip
    learner = Learner(policy, algorithm, learner_config(steps, lr))
    batch = curated_batch(task, reference)
    tracked = AveragedModel(policy, multi_avg_fn=get_ema_multi_avg_fn(ema_decay)) if method == "sft" else None
    records = []
    for step in range(steps + 1):
        if step:
            learner.train_step(batch)
            if tracked is not None:
                tracked.update_parameters(policy)
        q_net = tracked.module if tracked is not None else getattr(algorithm.q, "module", policy)
        records.append({"step": step, **objective_and_bounds(task, policy, reference, q_net)})
    return records


def plot(results: dict, path: Path) -> None:
    methods = next(iter(results.values()))
    figure, axes = plt.subplots(len(results), len(methods), figsize=(3.6 * len(methods), 3.0 * len(results)),
                                squeeze=False)  # fmt: skip
    for row, (task, runs) in enumerate(results.items()):
        for column, (method, records) in enumerate(runs.items()):
            axis, steps = axes[row][column], [r["step"] for r in records]
            for key, label, style in (
                ("J", "J (exact)", "-"),
                ("B_iw", "iw-SFT bound", "--"),
                ("B_sft", "SFT bound", ":"),
            ):
                axis.plot(steps, [r[key] for r in records], style, label=label)
            axis.set(title=f"{task}: {method}", xlabel="gradient steps")
        axes[row][0].set_ylabel("expected reward")
    axes[0][0].legend(frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run(cfg: DictConfig) -> dict:
    size = cfg.sizes[cfg.size]
    if not cfg.methods or any(method not in METHODS for method in cfg.methods):
        raise RLSFTError(f"methods={list(cfg.methods)} must name some of {list(METHODS)}; fix that override.")
    # every setting's type (one sentence naming its key), then its range, before any training
    checked_options(train, {key: cfg[key] for key in ("lr", "ema_decay", "copy_every")}, where="")
    checked_options(train, {"steps": size.steps}, where=f"sizes.{cfg.size}")
    learner_config(size.steps, cfg.lr)
    sequence = checked_options(sequences, dict(size.sequences), where=f"sizes.{cfg.size}.sequences")
    if (
        sequence["length"] < 1
        or sequence["actions"] < 1
        or sequence["threshold"] > sequence["length"] * (sequence["actions"] - 1)
    ):
        raise RLSFTError(
            f"sizes.{cfg.size}.sequences={sequence} must have a positive length and number of actions and a threshold"
            " that some sequence reaches (at most length * (actions - 1)); fix the override."
        )
    tasks = [bandit(), sequences(**sequence)]
    results = {
        task.name.split(" ")[0]: {method: train(task, method, size.steps, cfg.lr, cfg.ema_decay, cfg.copy_every)
                                  for method in cfg.methods}
        for task in tasks
    }  # fmt: skip
    folder = Path(cfg.results).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    record = {"suite": "bound", "config": OmegaConf.to_container(cfg, resolve=True), "environment": environment(),
              "tasks": [task.name for task in tasks], "runs": results}  # fmt: skip
    (folder / "bound.json").write_text(json.dumps(record, indent=2))
    plot(results, folder / "bound.png")
    lines = [f"# The bounds of method.md §2, exactly ({cfg.size})", "", f"- command: `rlsft bench bound size={cfg.size}`",
             f"- date: {record['environment']['date']}; tasks: {', '.join(record['tasks'])}; pi_ref uniform",
             "", "| task | method | J at start | J at end | SFT bound at end | iw-SFT bound at end | largest bound - J (> 0 only by float32 rounding) |",
             "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for task, runs in results.items():
        for method, records in runs.items():
            worst = max(max(r["B_sft"], r["B_iw"]) - r["J"] for r in records)
            end = records[-1]
            lines.append(f"| {task} | {method} | {records[0]['J']:.4f} | {end['J']:.4f} | {end['B_sft']:.4f} |"
                         f" {end['B_iw']:.4f} | {worst:.2e} |")  # fmt: skip
    lines += ["", "![J and its two lower bounds over training](bound.png)", ""]
    (folder / "bound.md").write_text("\n".join(lines))
    return {"report": str(folder / "bound.md"), "json": str(folder / "bound.json")}
