"""Composing rlsft's hydra configs with command-line overrides, each mistake one sentence.

Unknown choices and keys get the nearest valid name (did you mean ...); a sweep's comma lists are
checked choice by choice. The CLI, the sweeps and the bench suites all compose through here.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import hydra
from hydra import initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from rlsft.configs import default_budget
from rlsft.errors import RLSFTError, did_you_mean, reason

CONFIG_GROUPS = ("algorithm", "env", "policy", "learner", "budget", "verifier")
LEAD_KEYS = ("steps", "rollout", "evaluation_every")  # what a mix's first part decides for the run (mix.yaml)


def search_folders(overrides: list[str]) -> list[Path]:
    """The config folders that `hydra.searchpath=[file://...]` adds to rlsft's own."""
    for override in overrides:
        key, _, value = override.partition("=")
        if key == "hydra.searchpath":
            entries = [entry.strip().strip("'\"") for entry in value.strip("[]").split(",")]
            return [Path(entry.removeprefix("file://")) for entry in entries if entry.startswith("file://")]
    return []


def group_options(group: str, extra_folders: list[Path] = ()) -> list[str]:
    """The options of a config group: rlsft's YAML files, and those in `extra_folders`/<group>."""
    folders = [resources.files("rlsft.configs") / group, *(Path(folder) / group for folder in extra_folders)]
    files = [entry.name for folder in folders if folder.is_dir() for entry in folder.iterdir()]
    return sorted({name.removesuffix(".yaml") for name in files if name.endswith(".yaml")})


def config_keys(node: object, prefix: str = "") -> list[str]:
    """Every dotted key path of a config container."""
    if not isinstance(node, dict):
        return []
    return [path for key, value in node.items() for path in (f"{prefix}{key}", *config_keys(value, f"{prefix}{key}."))]


def checked_choices(overrides: list[str]) -> list[str]:
    """The config-group choices among `overrides` (a sweep's first), each checked to exist."""
    choices = []
    for override in overrides:
        key, _, value = override.partition("=")
        if key in CONFIG_GROUPS:
            options = group_options(key, search_folders(overrides))
            for choice in value.split(","):  # a sweep's list (`algorithm=bc,sft`) is checked choice by choice
                if choice not in options:
                    raise RLSFTError(
                        f"Unknown {key} {choice!r}{did_you_mean(choice, options)}; choose one of {options}."
                    )
            choices.append(f"{key}={value.split(',')[0]}")
    return choices


def compose(name: str, overrides: list[str]) -> DictConfig:
    with initialize_config_module("rlsft.configs", version_base="1.3"):
        return hydra.compose(config_name=name, overrides=overrides)


def compose_config(name: str, overrides: list[str]) -> DictConfig:
    """The composed config `name` with command-line overrides, checked for unknown choices and keys
    (training without `budget=` takes `default_budget`'s)."""
    choices = checked_choices(overrides)
    command = name.replace("/", " ")  # bench/control is `rlsft bench control`
    if name == "train":
        overrides = default_budget(overrides)
    try:
        cfg = compose(name, overrides)
    except (HydraException, OmegaConfBaseException) as error:
        unknown = re.match(r"Could not override '([^']+)'", str(error))
        if unknown is None:
            raise RLSFTError(
                f"Bad override ({reason(error)}); write key=value with a key from `rlsft {command} --cfg`."
            ) from error
        if "No match in the defaults list" in str(error):  # a group choice (env=...) this command's config lacks
            raise RLSFTError(
                f"`rlsft {command}` takes no {unknown.group(1)}= choice (its config has no such group); drop it, or"
                f" see `rlsft {command} --cfg`."
            ) from error
        keys = config_keys(OmegaConf.to_container(compose(name, choices + search_paths(overrides)), resolve=False))
        raise RLSFTError(
            f"Unknown config key {unknown.group(1)!r}{did_you_mean(unknown.group(1), keys)}; `rlsft {command} --cfg`"
            f" lists the keys, and +{unknown.group(1)}=<value> adds a new one."
        ) from error
    return with_parts(cfg, search_paths(overrides)) if name == "train" else cfg


def algorithm_block(choice: str, searchpath: list[str]) -> dict:
    """configs/algorithm/<choice>.yaml as train.yaml merges it over its algorithm base, unresolved (its
    interpolations then resolve in the config it is put in); in hydra's app (a sweep's job), composed there."""
    overrides = [f"algorithm={choice}", *searchpath]
    if GlobalHydra.instance().is_initialized():
        return OmegaConf.to_container(hydra.compose(config_name="train", overrides=overrides).algorithm)
    return OmegaConf.to_container(compose("train", overrides).algorithm)


def with_parts(cfg: DictConfig, searchpath: list[str]) -> DictConfig:
    """A mix's config (algorithm=mix) with each part's own algorithm block under algorithm.part.<part>, the
    user's overrides of a part merged over it, and the lead part's LEAD_KEYS as the mix's; others unchanged."""
    if cfg.algorithm.name != "mix":
        return cfg
    parts = list(cfg.algorithm.parts)
    options = [name for name in group_options("algorithm", search_folders(searchpath)) if name != "mix"]
    unknown = [part for part in parts if part not in options]
    if "mix" in parts:
        problem = "a mix cannot be a part of one"
    elif unknown:
        problem = f"{unknown[0]!r} is not an algorithm{did_you_mean(unknown[0], options)}"
    elif not parts or len(set(parts)) < len(parts):
        problem = "name each part once, and at least one"
    else:
        problem = ""
    if problem:
        raise RLSFTError(f"algorithm.parts={parts}: {problem}; choose the parts from {options}.")
    with open_dict(cfg):
        given = cfg.algorithm.get("part") or {}
        blocks = {part: OmegaConf.merge(algorithm_block(part, searchpath), given.get(part, {})) for part in parts}
        cfg.algorithm.part = blocks
        for key in LEAD_KEYS:
            if key in blocks[parts[0]]:
                cfg.algorithm[key] = f"${{algorithm.part.{parts[0]}.{key}}}"
    return cfg


def search_paths(overrides: list[str]) -> list[str]:
    """The `hydra.searchpath=` overrides among `overrides`: they decide which choices exist."""
    return [override for override in overrides if override.startswith("hydra.searchpath=")]
