"""Algorithms: one file each, registered by name; importing the package imports them all."""

from __future__ import annotations

import importlib
import pkgutil

from rlsft.algorithms.base import Algorithm, LossOutput, nll_loss
from rlsft.errors import RLSFTError, reason

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def make_algorithm(name: str, options: dict) -> Algorithm:
    """The algorithm registered as `name`, built from its config options."""
    if name not in Algorithm.registry:
        raise RLSFTError(f"Unknown algorithm {name!r}; choose one of {sorted(Algorithm.registry)}.")
    try:
        return Algorithm.registry[name](**options)
    except TypeError as error:  # an option the algorithm does not take
        raise RLSFTError(f"Bad options for algorithm {name!r} ({reason(error)}); check algorithm.options.") from error


__all__ = ["Algorithm", "LossOutput", "make_algorithm", "nll_loss"]
