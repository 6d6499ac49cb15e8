"""Reward verifiers, registered by name; one file each, so adding one is one file and one YAML."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence

from rlsft.envs.verifiers.base import Verdict, Verifier
from rlsft.errors import RLSFTError, reason

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def make_verifier(name: str, options: dict) -> Verifier:
    """The verifier registered as `name`, built from its config options."""
    if name not in Verifier.registry:
        raise RLSFTError(f"Unknown verifier {name!r}; choose one of {sorted(Verifier.registry)}.")
    try:
        return Verifier.registry[name](**options)
    except (TypeError, ValueError) as error:
        raise RLSFTError(f"Bad options for verifier {name!r} ({reason(error)}); check verifier.options.") from error


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
