"""What every policy is: `log_prob(batch) -> [B, T]` over the shared trajectory batch."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import torch
from tensordict import TensorDict
from torch import nn

from rlsft.errors import RLSFTError
from rlsft.registry import Registered


class Policy(Registered, nn.Module):
    """Base class; a subclass with a `name` registers itself for `policy.name=<name>` (configs/policy/).

    Its YAML's keys are its constructor's arguments (or its `from_config`'s), except `config_only`:
    keys that other layers read (a causal LM's `finetune_lr`, the LLM learner's rate).
    """

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[Policy]]] = {}
    config_only: ClassVar[tuple[str, ...]] = ()
    in_keys: ClassVar[tuple[str, ...]]  # the batch keys log_prob reads

    def log_prob(self, batch: TensorDict) -> torch.Tensor:
        """log pi(a_t|s_t) [B, T] on the real steps (`mask`), zero elsewhere."""
        raise NotImplementedError

    def shard(self) -> None:
        """Shards the parameters over the run's ranks (learner.distributed=fsdp), in place, before the optimiser
        is made; a policy that knows its layers says how."""
        raise RLSFTError(
            f"learner.distributed=fsdp shards causal-LM policies, and {self.name} is not one; use"
            " learner.distributed=ddp (its parameters fit one device)."
        )

    def export(self, folder: Path) -> dict[str, str]:
        """Writes the trained policy to `folder` in a form that loads without rlsft; returns what was written
        and how to load it."""
        raise RLSFTError(f"{self.name} policies cannot be exported yet; load the checkpoint with rlsft instead.")
