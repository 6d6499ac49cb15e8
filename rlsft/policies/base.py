"""What every policy is: `log_prob(batch) -> [B, T]` over the shared trajectory batch."""

from __future__ import annotations

from typing import ClassVar

import torch
from tensordict import TensorDict
from torch import nn

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
