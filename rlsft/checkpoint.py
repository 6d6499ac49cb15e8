"""Checkpoints: atomic writes, RNG capture, and loading with `torch.load(weights_only=True)`."""

from __future__ import annotations

import io
import os
import random
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

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


def remove_interrupted_writes(folder: str | Path) -> None:
    """Delete the temporary files of `save_atomic` calls that a kill cut short in `folder`."""
    for stale in Path(folder).glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `save_atomic`, allowing only tensors and plain containers.

    A file holding anything else (a pickled object, whose loading could run code) is refused.
    """
    path = Path(path)
    if path.is_dir():
        raise RLSFTError(
            f"{path} is a folder, not a checkpoint; pass the .pt file itself, e.g. {path / 'checkpoint.pt'}."
        )
    if not path.is_file():
        raise RLSFTError(f"Checkpoint {path} does not exist; pass checkpoint=<path to a .pt file written by rlsft>.")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated or empty file, not a torch file, a pickled object, ...
        # deleting is the fix for a run's own checkpoint (the run then starts afresh), not for any file passed here
        fix = (
            "delete it (its run then starts afresh) or pass another checkpoint"
            if path.name == "checkpoint.pt"
            else "pass a run folder or its checkpoint.pt"
        )
        # torch's message names the refused global, and advises weights_only=False: not for files from outside
        if found := re.search(r"GLOBAL (\S+)", str(error)):
            raise RLSFTError(
                f"Checkpoint {path} holds objects other than tensors and plain containers ({found.group(1)}), whose"
                f" loading could run code, so it was not loaded; {fix}."
            ) from error
        detail = reason(error).split(". ")[0] if str(error).strip() else "it ends early"
        raise RLSFTError(f"Checkpoint {path} is corrupt or not an rlsft checkpoint ({detail}); {fix}.") from error


def encode_state(state: dict) -> torch.Tensor:
    """`state` (tensors and plain containers) as one byte tensor, to pass where only tensors go: a torchrl
    collector worker's state through a TensorDict (which keeps tensors but not the lists and big integers
    of generator states), a rank's state through a collective."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return torch.frombuffer(bytearray(buffer.getvalue()), dtype=torch.uint8)


def decode_state(data: torch.Tensor) -> dict:
    """What `encode_state` wrote, loaded on the CPU as tensors and plain containers only: bytes that arrive
    from anywhere else (a crafted checkpoint) cannot run code here."""
    return torch.load(io.BytesIO(data.cpu().numpy().tobytes()), map_location="cpu", weights_only=True)


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


@contextmanager
def rng_preserved() -> Iterator[None]:
    """Every RNG of `rng_state` continues after the block as if the block had not drawn from it:
    work that a cache may skip (training pi_ref) leaves the run's random stream as it was."""
    saved = rng_state()
    try:
        yield
    finally:
        set_rng_state(saved)


def checked_seed(seed: Any) -> int:
    """`seed` where it is an integer that Python's, numpy's and torch's generators all take, else one sentence."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise RLSFTError(f"seed={seed!r} is not an integer in [0, 2**32); pass seed=<such an integer>.")
    return seed


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
