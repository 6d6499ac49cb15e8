"""The learner: applies any algorithm's loss to a policy, one gradient step at a time.

It owns the device, optimiser, warm-up + cosine schedule, gradient clipping, precision and
its own state for checkpoints; it knows nothing about where batches come from.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from tensordict import TensorDict
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import FSDPModule
from torch.distributed.tensor import DTensor

from rlsft import distributed
from rlsft.compiling import compiled
from rlsft.errors import RLSFTError, reason

# Whole state dicts of a sharded policy and its optimiser, gathered on the CPU (rank 0's), and loaded from one.
FULL_STATE = StateDictOptions(full_state_dict=True, cpu_offload=True)

if TYPE_CHECKING:  # the learner applies any loss; it needs the algorithms' type alone
    from rlsft.algorithms import Algorithm


@dataclass
class LearnerConfig:
    """Optimisation settings; configs/learner/*.yaml hold the named presets."""

    steps: int | None = 2000  # gradient steps in the run; None: `epochs` passes over the data
    epochs: float | None = None  # sets `steps` when it is None (see `sized_for`)
    batch_size: int = 256  # trajectories per gradient step
    optimizer: str = "adam"  # adam | adamw
    lr: float = 4e-5  # peak learning rate
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8  # Adam's epsilon (CleanRL's PPO uses 1e-5)
    weight_decay: float = 0.0
    warmup_steps: int | None = 300  # linear warm-up from 0 to lr; None: `warmup_fraction` of the steps
    warmup_fraction: float = 0.0
    schedule: str = "cosine"  # cosine | linear (both decay to 0 at `steps`) | constant
    grad_clip: float | None = None  # max global gradient norm; None: no clipping (norm still logged)
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 elsewhere | fp32 | bf16 (autocast, CPU too)
    # none | ddp: under torchrun, every rank trains on its share of each global batch (batch_size is the
    # global one) and the gradients are averaged | fsdp: as ddp, with a causal LM's parameters, gradients and
    # optimiser state sharded over the ranks (FSDP2, a unit per decoder layer; checkpoints hold full state
    # dicts, which load in one process) | auto: ddp under torchrun with 2+ processes, else none
    distributed: str = "none"
    compile: bool = False  # torch.compile the algorithm's loss, the policy's log-prob in it (the first step compiles)
    device: str = "auto"  # auto: CUDA when present | cpu | cuda | cuda:N
    # A step whose loss or gradient norm is not finite is never applied. stop: the run then stops with
    # one sentence naming the step, keeping the last checkpoint (written before it) | skip: the run goes
    # on, and such steps are counted (metric `nonfinite_steps`).
    nonfinite: str = "stop"

    def __post_init__(self) -> None:
        choices = {"optimizer": ("adam", "adamw"), "schedule": ("cosine", "linear", "constant"),
                   "precision": ("auto", "fp32", "bf16"), "nonfinite": ("stop", "skip"),
                   "distributed": distributed.MODES}  # fmt: skip
        for field_name, allowed in choices.items():
            if getattr(self, field_name) not in allowed:
                raise ValueError(f"{field_name}={getattr(self, field_name)!r} is not one of {list(allowed)}")
        ranges = {
            "steps (or epochs)": (self.steps if self.steps is not None else self.epochs or 0) > 0,
            "batch_size": self.batch_size >= 1,
            "lr": self.lr > 0,
            "betas": len(self.betas) == 2 and all(0 <= beta < 1 for beta in self.betas),
            "eps": self.eps >= 0,
            "weight_decay": self.weight_decay >= 0,
            "warmup_steps": self.warmup_steps is None or self.warmup_steps >= 0,
            "warmup_fraction": 0 <= self.warmup_fraction < 1,
            "grad_clip": self.grad_clip is None or self.grad_clip > 0,
        }
        if bad := [name for name, ok in ranges.items() if not ok]:
            raise ValueError(
                f"{bad[0]} is out of range (steps, epochs, batch_size, lr and grad_clip must be positive,"
                " betas and warmup_fraction in [0, 1), eps, weight_decay and warmup_steps not negative)"
            )

    def sized_for(self, trajectories: int) -> LearnerConfig:
        """This config with `steps` = `epochs` passes over `trajectories` (when steps is None) and
        `warmup_steps` = `warmup_fraction` of them (when warmup_steps is None)."""
        steps = self.steps or max(1, math.ceil(self.epochs * trajectories / self.batch_size))
        warmup = self.warmup_steps if self.warmup_steps is not None else round(self.warmup_fraction * steps)
        return dataclasses.replace(self, steps=steps, warmup_steps=warmup)

    @property
    def data_parallel(self) -> bool:
        """Whether this learner trains beside other ranks on its share of each batch (learner.distributed,
        resolved for this launch: a one-sentence error for ddp or fsdp outside torchrun)."""
        return distributed.resolve(self.distributed) in ("ddp", "fsdp")

    @property
    def sharded(self) -> bool:
        """Whether the policy's parameters are sharded over the ranks (fsdp): every rank then joins each
        forward pass, generation and evaluation included."""
        return distributed.resolve(self.distributed) == "fsdp"

    @classmethod
    def from_config(cls, config: DictConfig, where: str = "learner") -> LearnerConfig:
        """A learner config block (found at `where`: learner, or pi_ref's reference.learner), type-checked
        (a string lr is caught here) and range-checked, each mistake one sentence naming its key."""
        settings = OmegaConf.to_container(config, resolve=True)  # a resolver's own error reaches the CLI as it is
        try:
            return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), settings))
        except OmegaConfBaseException as error:
            raise RLSFTError(f"Bad {where} setting ({reason(error)}); fix that override.") from error
        except ValueError as error:  # __post_init__'s checks (OmegaConf passes them through as they are)
            raise RLSFTError(f"{where}.{error}; fix the override.") from error


def resolve_device(name: str) -> torch.device:
    """`learner.device` as a torch device that this machine has."""
    if name == "auto":
        return distributed.local_device(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise RLSFTError(
            f"learner.device={name!r} is not a device torch knows; use auto, cpu, cuda or cuda:N."
        ) from error
    if device.type not in ("cpu", "cuda"):  # mps, xpu, ...: a torch build may lack them, rlsft is not tested there
        raise RLSFTError(f"learner.device={name} is not one rlsft trains on; use auto, cpu, cuda or cuda:N.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RLSFTError(f"learner.device={name} but this machine has no CUDA device; use learner.device=auto or cpu.")
    return distributed.local_device(device)


def warmup_cosine(warmup_steps: int, total_steps: int, schedule: str):
    """Learning-rate factor: linear warm-up, then cosine or linear decay to 0 (or constant)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if schedule == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        if schedule == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class Learner:
    def __init__(self, policy: nn.Module, algorithm: Algorithm, config: LearnerConfig) -> None:
        if config.steps is None or config.warmup_steps is None:
            raise ValueError("the learner needs concrete steps and warm-up: size its config with sized_for() first")
        self.config = config
        self.device = resolve_device(config.device)
        self.policy = policy.to(self.device)
        algorithm.attach(self.policy)  # it may make modules of its own (iw-SFT's q, AWR's value function)
        self.algorithm = algorithm.to(self.device)
        self.data_parallel, self.sharded = config.data_parallel, config.sharded
        if self.data_parallel:
            distributed.start(self.device)
        # The algorithm's modules may hold the policy's own parameters (SAC's actor): what it keeps beside them
        # (iw-SFT's frozen q, AWR's value function, SAC's critics) is its own.
        held = {id(p) for p in self.policy.parameters()}
        kept = [p for p in self.algorithm.parameters() if id(p) not in held]
        if self.sharded:  # before the optimiser, which then holds each rank's shards
            if kept:
                raise RLSFTError(
                    f"learner.distributed=fsdp shards the policy, and {algorithm.name} keeps parameters of its own"
                    " (iw-SFT's q=ema or copy, AWR's value function), which would stay whole on every rank; use"
                    " algorithm.options.q=policy or learner.distributed=ddp."
                )
            self.policy.shard()
        self.loss = compiled(self.algorithm.loss, self.device) if config.compile else self.algorithm.loss
        self.autocast = config.precision == "bf16" or (config.precision == "auto" and self.device.type == "cuda")
        optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
        # the policy's, and those the algorithm trains beside them (iw-SFT's q is frozen)
        policy_parameters = [p for p in self.policy.parameters() if p.requires_grad]
        own = [p for p in kept if p.requires_grad]
        self.parameters = [*policy_parameters, *own]
        # Adam(W) in one fused kernel (on CPU a third of the per-tensor loop's time for PPO-sized
        # networks), which can also leave out a non-finite step without a host sync (`found_inf`).
        self.optimizer = optimizer_class(
            [{"params": policy_parameters}, *self.algorithm.parameter_groups(own)],
            lr=config.lr,
            betas=tuple(config.betas),
            eps=config.eps,
            weight_decay=config.weight_decay,
            fused=True,
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(config.warmup_steps, config.steps, config.schedule)
        )
        self.step = 0
        self.nonfinite_steps = torch.zeros((), device=self.device)  # steps left out so far
        self.first_nonfinite = torch.full((), -1, dtype=torch.long, device=self.device)  # the first (1-based)

    def train_step(self, batch: TensorDict) -> dict[str, torch.Tensor | float]:
        """One gradient step; metrics stay on the device (no host sync) until logged."""
        self.algorithm.before_step(self.policy, self.step)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            output = self.loss(self.policy, batch)
        self.optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        loss = output.loss.detach()  # from here on the global batch's loss: the mean of the ranks' shares
        if self.sharded:  # (FSDP reduce-scattered the gradients' mean in backward)
            loss = distributed.average_over_ranks(loss)
        elif self.data_parallel:  # every rank now holds the gradient of the global batch's loss, and that loss,
            (loss,) = distributed.average_gradients(self.parameters, loss)  # in one all-reduce
        if self.config.grad_clip:
            grad_norm = nn.utils.clip_grad_norm_(self.parameters, self.config.grad_clip)
        else:  # the norm is still logged; skip the no-op rescaling of every gradient
            grad_norm = nn.utils.get_total_norm([p.grad for p in self.parameters if p.grad is not None])
        if isinstance(grad_norm, DTensor):  # the norm of the sharded gradients, the same on every rank
            grad_norm = grad_norm.full_tensor()
        # A step is left out on every rank or none: the loss and the gradients are means over the ranks, so one
        # rank's non-finite value makes them non-finite on every rank.
        nonfinite = ~(torch.isfinite(loss) & torch.isfinite(grad_norm))
        self.nonfinite_steps += nonfinite
        first = nonfinite & (self.first_nonfinite < 0)
        self.first_nonfinite.copy_(torch.where(first, self.step + 1, self.first_nonfinite))
        # The fused kernel reads `found_inf` as torch's GradScaler sets it: a flagged step leaves the
        # parameters and Adam's moments and step count as they were.
        self.optimizer.found_inf = nonfinite.float()
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        metrics = {"loss": loss, "grad_norm": grad_norm, "lr": lr}
        return {**metrics, **output.metrics, "nonfinite_steps": self.nonfinite_steps.clone()}

    def named(self, optimizer: dict[str, Any]) -> dict[str, Any]:
        """An optimiser state keyed by parameter name, as torch.distributed.checkpoint reads it (one that
        torch.optim wrote, keyed by each parameter's place, is renamed)."""
        names = [name for name, parameter in self.policy.named_parameters() if parameter.requires_grad]
        rename = {index: name for index, name in enumerate(names)}
        groups = [
            {**group, "params": [rename.get(p, p) for p in group["params"]]} for group in optimizer["param_groups"]
        ]
        return {
            "state": {rename.get(key, key): value for key, value in optimizer["state"].items()},
            "param_groups": groups,
        }

    def first_nonfinite_step(self) -> int | None:
        """The first step whose loss or gradient was not finite, if any (a host sync)."""
        step = int(self.first_nonfinite)
        return step if step > 0 else None

    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        """The policy's parameters and buffers, whole (sharded: gathered, a call every rank makes, on the CPU)."""
        if not self.sharded:
            return self.policy.state_dict()
        for module in self.policy.modules():  # a forward without backward (sampling) leaves the root gathered
            if isinstance(module, FSDPModule):
                module.reshard()
        return get_model_state_dict(self.policy, options=FULL_STATE)

    def state_dict(self) -> dict[str, Any]:
        """The learner's state for a checkpoint; sharded, whole state dicts (parameters and optimiser keyed by
        name), which a run of any number of processes loads: every rank calls it, rank 0's is the full one."""
        policy = self.policy_state_dict()
        if self.sharded:
            optimizer = get_optimizer_state_dict(self.policy, self.optimizer, options=FULL_STATE)
        else:
            optimizer = self.optimizer.state_dict()
        return {
            "policy": policy,
            "algorithm": self.algorithm.state_dict(),
            "optimizer": optimizer,
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "nonfinite": torch.stack([self.nonfinite_steps.double(), self.first_nonfinite.double()]),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """A checkpoint's learner state, whichever way it was written (one process, ddp or fsdp)."""
        optimizer = state["optimizer"]
        by_name = all(isinstance(key, str) for key in optimizer["state"])  # as fsdp writes it (or empty)
        if self.sharded:
            set_model_state_dict(self.policy, state["policy"], options=FULL_STATE)
        else:
            self.policy.load_state_dict(state["policy"])
        if self.sharded or (by_name and optimizer["state"]):
            set_optimizer_state_dict(self.policy, self.optimizer, self.named(optimizer), options=FULL_STATE)
        else:
            self.optimizer.load_state_dict(optimizer)
        self.algorithm.load_state_dict(state["algorithm"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = state["step"]
        if "nonfinite" in state:  # checkpoints of rlsft before learner.nonfinite have none
            self.nonfinite_steps.copy_(state["nonfinite"][0])
            self.first_nonfinite.copy_(state["nonfinite"][1])
