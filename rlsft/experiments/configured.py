"""From a composed config to the algorithm it names and the experiment that trains it, a mix's parts included.

A mix (algorithm=mix, rlsft/algorithms/mix.py) is built part by part: each part sees the run's config with
its own block (algorithm.part.<part>) as `algorithm`, makes its batch source through the domain as it would
alone, and trains the policy the first part made; the first part's sizing and evaluation are the run's.
"""

from __future__ import annotations

import copy
import dataclasses

from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from rlsft.algorithms import Algorithm, make_algorithm
from rlsft.algorithms.mix import Mix
from rlsft.errors import RLSFTError
from rlsft.experiments import make_domain
from rlsft.experiments.base import Experiment
from rlsft.learner import LearnerConfig
from rlsft.sources.mixed import MixedSource


def part_config(cfg: DictConfig, part: str) -> DictConfig:
    """The run's config as the mix's `part` sees it: its own block (configs/algorithm/<part>.yaml) as `algorithm`."""
    view = copy.deepcopy(cfg)
    with open_dict(view):
        view.algorithm = OmegaConf.to_container(cfg.algorithm.part[part])
    return view


def configured_algorithm(cfg: DictConfig) -> Algorithm:
    """The algorithm `cfg.algorithm` names, checked to run on the run's domain and with its data."""
    if cfg.algorithm.name == "mix":
        parts = {part: configured_algorithm(part_config(cfg, part)) for part in cfg.algorithm.parts}
        batch_sizes(cfg, list(parts))  # checked before any part's data or pi_ref is made
        return Mix(parts, as_list(cfg.algorithm.weights))
    algorithm = make_algorithm(cfg.algorithm.name, OmegaConf.to_container(cfg.algorithm.options, resolve=True))
    if cfg.domain.name not in algorithm.domains:
        raise RLSFTError(
            f"{algorithm.name} runs on {' or '.join(algorithm.domains)} envs, and {cfg.env.name} is a"
            f" {cfg.domain.name} env; pick another algorithm= or env=."
        )
    every, steps = cfg.algorithm.rounds.every, cfg.algorithm.rounds.steps
    if not (type(every) is int and every >= 0 and type(steps) is int and steps > 0):  # (bool is not a count)
        raise RLSFTError(
            f"algorithm.rounds.every={every!r} must be a whole number of gradient steps, 0 or more (0: no"
            f" rounds), and algorithm.rounds.steps={steps!r} a positive number of env steps; fix the override."
        )
    if every and algorithm.source != "dataset":
        raise RLSFTError(
            f"algorithm.rounds.every={every} iterates the SFT family's data, and {algorithm.name}"
            " draws fresh batches anyway; set algorithm.rounds.every=0."
        )
    return algorithm


def configured_experiment(
    cfg: DictConfig, algorithm: Algorithm, learner_config: LearnerConfig, policy: nn.Module | None = None
) -> Experiment:
    """The experiment of `algorithm` in the run `cfg` configures (on `policy` where a mix's first part made it),
    its batches checked to hold every key the loss and the policy read."""
    if isinstance(algorithm, Mix):
        return mixed_experiment(cfg, algorithm, learner_config)
    experiment = make_domain(cfg).experiment(cfg, algorithm, learner_config, policy)
    missing = [key for key in dict.fromkeys((*algorithm.in_keys, *experiment.policy.in_keys))
               if key not in experiment.source.keys]  # fmt: skip
    if missing:
        raise RLSFTError(
            f"{algorithm.name} reads {missing} from each batch, and batches of {experiment.data} hold"
            f" {list(experiment.source.keys)} only; choose an algorithm that reads those data, or data that hold"
            " those keys."
        )
    return experiment


def as_list(value: object) -> list:
    """A config list as a Python list, anything else (`algorithm.weights=abc`) as a list of it alone."""
    return list(value) if OmegaConf.is_list(value) else [value]


def batch_sizes(cfg: DictConfig, parts: list[str]) -> list[int | None]:
    """`algorithm.batch_sizes` of a mix: a positive integer or null (learner.batch_size) for each part."""
    sizes = as_list(cfg.algorithm.batch_sizes) or [None] * len(parts)
    if len(sizes) != len(parts) or not all(size is None or (type(size) is int and size >= 1) for size in sizes):
        raise RLSFTError(
            f"algorithm.batch_sizes={sizes} must give each of the parts {parts} a positive whole batch size"
            " (null: learner.batch_size), or be [] for learner.batch_size everywhere."
        )
    return sizes


def mixed_experiment(cfg: DictConfig, mix: Mix, learner_config: LearnerConfig) -> Experiment:
    """Every part's experiment on one policy (the first part's), their sources as one MixedSource."""
    experiments, policy = {}, None
    for (part, algorithm), size in zip(mix.parts.items(), batch_sizes(cfg, list(mix.parts)), strict=True):
        part_learner = dataclasses.replace(learner_config, batch_size=size or learner_config.batch_size)
        experiments[part] = configured_experiment(part_config(cfg, part), algorithm, part_learner, policy)
        policy = experiments[part].policy
    lead = experiments[next(iter(mix.parts))]
    return dataclasses.replace(
        lead,
        source=MixedSource({part: experiment.source for part, experiment in experiments.items()}),
        data=" + ".join(f"{part}: {experiment.data}" for part, experiment in experiments.items()),
        about={f"{part}.{key}": value for part, experiment in experiments.items()
               for key, value in experiment.about.items()},
        metadata={key: value for experiment in experiments.values() for key, value in experiment.metadata.items()},
    )  # fmt: skip
