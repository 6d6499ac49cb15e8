"""Text tasks with verifiable answers, registered by name; one file each."""

from __future__ import annotations

import importlib
import pkgutil

from rlsft.envs.text.base import TextExample, TextTask
from rlsft.errors import RLSFTError, reason

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def make_task(name: str, options: dict) -> TextTask:
    if name not in TextTask.registry:
        raise RLSFTError(f"Unknown text task {name!r}; choose one of {sorted(TextTask.registry)}.")
    try:
        return TextTask.registry[name](**options)
    except (TypeError, ValueError) as error:
        raise RLSFTError(f"Bad options for text task {name!r} ({reason(error)}); check the env's options.") from error


__all__ = ["TextExample", "TextTask", "make_task"]
