"""Text tasks with verifiable answers, registered by name; one file each."""

from __future__ import annotations

from rlsft.envs.text.base import TextExample, TextTask
from rlsft.registry import build, import_all

import_all(__name__, __path__)


def make_task(name: str, options: dict) -> TextTask:
    """The text task registered as `name`, built from its config options."""
    return build(TextTask, "text task", name, options, "the env's options")


__all__ = ["TextExample", "TextTask", "make_task"]
