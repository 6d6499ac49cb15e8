"""A user's own scoring function, named in config as `module.path:function`.

The function takes (completion, answer) and returns a bool, a number (the reward; success
when positive), or a Verdict.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from rlsft.envs.verifiers.base import Verdict, Verifier
from rlsft.errors import RLSFTError


def import_callable(path: str) -> Callable[[str, str], object]:
    module_name, _, attribute = path.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"cannot import {path!r}; name a function as module.path:function ({error})") from error
    if not callable(function):
        raise ValueError(f"{path!r} is not callable")
    return function


class UserCallable(Verifier):
    name = "user_callable"

    def __init__(self, function: str) -> None:
        self.function = import_callable(function)

    def verify_one(self, completion: str, answer: str) -> Verdict:
        result = self.function(completion, answer)
        if isinstance(result, Verdict):
            return result
        try:
            reward = float(result)
        except (TypeError, ValueError) as error:
            raise RLSFTError(
                f"The user_callable verifier's function returned {result!r:.80}; make it return a bool, a number or a Verdict."
            ) from error
        return Verdict(reward=reward, success=reward > 0, format_ok=True, parse_error=False)
