"""What every text task is: prompts with gold answers, in a train and a held-out split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rlsft.errors import RLSFTError
from rlsft.registry import Registered

SPLITS = ("train", "test")


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise RLSFTError(f"A text task has the splits {list(SPLITS)}, not {split!r}; ask for one of those.")


@dataclass(frozen=True)
class TextExample:
    prompt: str  # the question as the user asks it (a chat template may wrap it)
    answer: str  # the gold answer, as the task's verifier reads it


class TextTask(Registered):
    """Base class; a subclass with a `name` registers itself as a text env.

    `verifier` names the verifier that scores it by default.
    """

    name: ClassVar[str]
    verifier: ClassVar[str] = "exact_numeric"
    registry: ClassVar[dict[str, type[TextTask]]] = {}

    def examples(self, split: str) -> list[TextExample]:
        raise NotImplementedError
