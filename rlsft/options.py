"""Config options checked against the signature they are passed to, before anything is built.

Hydra passes YAML values as they are typed on the command line, so `algorithm.options.alpha=abc`
would reach the loss as a string and fail many calls later. Here a wrong type or an unknown name
is one sentence naming the key.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any

from rlsft.errors import RLSFTError, did_you_mean

SEQUENCES = (list, tuple, collections.abc.Sequence)
OPTION_KINDS = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
PLURALS = {float: "numbers", int: "integers", bool: "booleans", str: "strings"}


def matches(value: Any, hint: Any) -> bool:
    """Whether a config value fits a type hint: a number where a float goes, a list of them where a sequence does."""
    origin, arguments = typing.get_origin(hint), typing.get_args(hint)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, argument) for argument in arguments)
    if hint is type(None):
        return value is None
    if origin in SEQUENCES:
        element = arguments[0] if arguments else Any
        return isinstance(value, (list, tuple)) and all(matches(item, element) for item in value)
    return True  # a type the config cannot state: the callee checks it


def describe(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(describe(argument) for argument in typing.get_args(hint))
    if typing.get_origin(hint) in SEQUENCES:
        element = typing.get_args(hint)[0] if typing.get_args(hint) else None
        return f"a list of {PLURALS.get(element, 'values')}"
    return {float: "a number", int: "an integer", bool: "true or false", str: "a string", type(None): "null"}.get(
        hint, getattr(hint, "__name__", str(hint))
    )


def checked_options(
    target: Callable, options: dict[str, Any], where: str, supplied: tuple[str, ...] = ()
) -> dict[str, Any]:
    """`options` for calling `target` (a class or function), each named and typed as its signature says;
    `supplied` are the arguments the caller passes itself, not options; `where` prefixes their keys (empty: none)."""
    parameters = inspect.signature(target).parameters
    hints = typing.get_type_hints(target.__init__ if inspect.isclass(target) else target)
    known = [name for name, parameter in parameters.items() if name not in supplied and parameter.kind in OPTION_KINDS]
    for name, value in options.items():
        key = f"{where}.{name}" if where else name
        if name not in known:
            raise RLSFTError(f"{key} is not an option{did_you_mean(name, known)}; the options are {known}.")
        if name in hints and not matches(value, hints[name]):
            raise RLSFTError(f"{key}={value!r} should be {describe(hints[name])}; fix the override.")
    return options
