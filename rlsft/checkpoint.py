"""Checkpoints: atomic writes, RNG capture, and loading with `torch.load(weights_only=True)`."""

from __future__ import annotations

import os
import random
import tempfile
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensordict import TensorDict

from rlsft.errors import RLSFTError, reason


def save_atomic(state: dict[str, Any], path: str | Path) -> None:
    """Write `state` to `path` so that a crash leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(state, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `save_atomic`, allowing only tensors and plain containers."""
    path = Path(path)
    if not path.is_file():
        raise RLSFTError(f"Checkpoint {path} does not exist; pass checkpoint=<path to a .pt file written by rlsft>.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated file, foreign pickle, ...
        raise RLSFTError(
            f"Checkpoint {path} cannot be read ({reason(error)}); it is corrupt or not an rlsft checkpoint."
        ) from error


def rng_state() -> dict[str, Any]:
    """Every RNG the training loop draws from, as weights_only-loadable objects."""
    name, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.copy()), position, has_gauss, cached_gaussian),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, position, has_gauss, cached_gaussian = state["numpy"]
    np.random.set_state((name, keys.numpy(), position, has_gauss, cached_gaussian))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def queue_state(queue: Iterable[TensorDict]) -> list[dict[str, torch.Tensor]]:
    """Minibatches waiting in a batch source, as weights_only-loadable dicts of tensors."""
    return [minibatch.to_dict() for minibatch in queue]


def load_queue(state: list[dict[str, torch.Tensor]]) -> deque[TensorDict]:
    """The minibatches `queue_state` saved; each has the batch contract's [B, T] `mask`."""
    return deque(TensorDict(minibatch, batch_size=[len(minibatch["mask"])]) for minibatch in state)
