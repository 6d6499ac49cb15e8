"""Reward verifiers, registered by name; one file each, so adding one is one file and one YAML."""

from __future__ import annotations

from rlsft.envs.verifiers.base import Verdict, Verifier
from rlsft.registry import build, import_all

import_all(__name__, __path__)


def make_verifier(name: str, options: dict) -> Verifier:
    """The verifier registered as `name`, built from its config options."""
    return build(Verifier, "verifier", name, options, "verifier.options")


__all__ = ["Verdict", "Verifier", "make_verifier"]
