"""Name registries: how a name in a config (an algorithm, verifier, text task, policy, generation backend or
domain) finds its class.

A family's base class derives from `Registered` and declares its own `registry`; every
subclass that sets `name` is then registered there, so one file adds one member.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Any, ClassVar

from rlsft.errors import RLSFTError, did_you_mean, reason
from rlsft.options import checked_options


class Registered:
    name: ClassVar[str]
    registry: ClassVar[dict[str, type]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            cls.registry[cls.name] = cls


def import_all(package: str, path: Iterable[str]) -> None:
    """Import every module of a package, so that each registers its members."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")


def build(family: type[Registered], kind: str, name: str, options: dict, where: str, **supplied: Any) -> Any:
    """The member `name` of `family`, built from config `options` (found at `where`) and the `supplied` arguments
    its caller gives: by the member's `from_config` classmethod where it has one (a model loaded from a path),
    else by its constructor."""
    if name not in family.registry:
        names = sorted(family.registry)
        raise RLSFTError(f"Unknown {kind} {name!r}{did_you_mean(name, names)}; choose one of {names}.")
    member = family.registry[name]
    make = getattr(member, "from_config", member)
    try:
        return make(**supplied, **checked_options(make, options, where, tuple(supplied)))
    except (TypeError, ValueError) as error:  # an option it does not take, or a bad value
        raise RLSFTError(f"Bad options for {kind} {name!r} ({reason(error)}); check {where}.") from error
