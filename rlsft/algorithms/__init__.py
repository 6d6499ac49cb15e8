"""Algorithms: one file each, registered by name; importing the package imports them all."""

from __future__ import annotations

from rlsft.algorithms.base import Algorithm, LossOutput, nll_loss
from rlsft.registry import build, import_all

import_all(__name__, __path__)


def make_algorithm(name: str, options: dict) -> Algorithm:
    """The algorithm registered as `name`, built from its config options."""
    return build(Algorithm, "algorithm", name, options, "algorithm.options")


__all__ = ["Algorithm", "LossOutput", "make_algorithm", "nll_loss"]
