"""Reward verifiers, registered by name; one file each, so adding one is one file and one YAML."""

from __future__ import annotations

from collections.abc import Sequence

from rlsft.envs.verifiers.base import Verdict, Verifier
from rlsft.registry import build, import_all

import_all(__name__, __path__)


def make_verifier(name: str, options: dict) -> Verifier:
    """The verifier registered as `name`, built from its config options."""
    return build(Verifier, "verifier", name, options, "verifier.options")


def verdict_rates(verdicts: Sequence[Verdict]) -> dict[str, float]:
    """Mean reward and the success, format and parse-error rates of a batch, for logging."""
    count = max(1, len(verdicts))
    return {
        "reward": sum(v.reward for v in verdicts) / count,
        "success_rate": sum(v.success for v in verdicts) / count,
        "format_rate": sum(v.format_ok for v in verdicts) / count,
        "parse_error_rate": sum(v.parse_error for v in verdicts) / count,
    }


__all__ = ["Verdict", "Verifier", "make_verifier", "verdict_rates"]
