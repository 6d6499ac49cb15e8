"""Experiments by domain (control, text): what the trainer runs and `rlsft evaluate` evaluates."""

from __future__ import annotations

from omegaconf import DictConfig

from rlsft.experiments.base import Domain, Experiment
from rlsft.registry import build, import_all


def domain_name(cfg: DictConfig) -> str:
    """The run's domain; checkpoints written before the domain became a config node hold its name alone."""
    return cfg.domain if isinstance(cfg.domain, str) else cfg.domain.name


def make_domain(cfg: DictConfig) -> Domain:
    """The domain of the run `cfg` configures."""
    return build(Domain, "domain", domain_name(cfg), {}, "domain")


import_all(__name__, __path__)  # after make_domain: rlsft.experiments.configured imports it

__all__ = ["Domain", "Experiment", "domain_name", "make_domain"]
