"""One experiment from a composed config: a batch source, an algorithm, the learner, evaluation.

The domain (control or text) and the algorithm's `source` decide where batches come from:
an offline dataset, curated and sampled from a replay buffer (the SFT family), or fresh
rollouts (PPO on MuJoCo, GRPO on text). Everything after that, the loop, checkpoints,
metrics and evaluation, is shared.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rlsft import checkpoint, distributed
from rlsft.algorithms import Algorithm, make_algorithm
from rlsft.errors import RLSFTError, reason
from rlsft.experiments import make_domain
from rlsft.learner import Learner, LearnerConfig, resolve_device
from rlsft.loop import LoopConfig, fit
from rlsft.plots import learning_curve
from rlsft.policies import Policy
from rlsft.sources.base import BatchSource


def import_module_named(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as error:
        raise RLSFTError(
            f"Cannot import {module!r} listed in imports ({reason(error)}); put it on PYTHONPATH."
        ) from error


def check_batch_keys(algorithm: Algorithm, policy: Policy, source: BatchSource, data: str) -> None:
    """Every key the loss and the policy read (their in_keys) must be in the batches the source gives."""
    missing = [key for key in dict.fromkeys((*algorithm.in_keys, *policy.in_keys)) if key not in source.keys]
    if missing:
        raise RLSFTError(
            f"{algorithm.name} reads {missing} from each batch, and batches of {data} hold {list(source.keys)}"
            " only; choose an algorithm that reads those data, or data that hold those keys."
        )


def train(cfg: DictConfig) -> dict[str, float | str] | None:
    """Build the experiment `cfg` describes, train it (resuming if it ran before), evaluate it.

    Under torchrun with learner.distributed=ddp every rank trains; rank 0 returns the summary, the others None.
    """
    distributed.adopt_slurm_tasks()  # the tasks of a submitit job on SLURM: the ranks of this run
    for module in cfg.imports:
        import_module_named(module)
    loop = LoopConfig.from_config(cfg)
    if not isinstance(cfg.seed, int) or not 0 <= cfg.seed < 2**32:
        raise RLSFTError(f"seed={cfg.seed!r} is not an integer in [0, 2**32); pass seed=<such an integer>.")
    checkpoint.seed_everything(cfg.seed)
    algorithm = make_algorithm(cfg.algorithm.name, OmegaConf.to_container(cfg.algorithm.options, resolve=True))
    if cfg.domain.name not in algorithm.domains:
        raise RLSFTError(
            f"{algorithm.name} runs on {' or '.join(algorithm.domains)} envs, and {cfg.env.name} is a"
            f" {cfg.domain.name} env; pick another algorithm= or env=."
        )
    if cfg.algorithm.rounds.every and algorithm.source != "dataset":
        raise RLSFTError(
            f"algorithm.rounds.every={cfg.algorithm.rounds.every} iterates the SFT family's data, and {algorithm.name}"
            " draws fresh batches anyway; set algorithm.rounds.every=0."
        )
    learner_config = LearnerConfig.from_config(cfg.learner)
    if learner_config.data_parallel:
        distributed.start(resolve_device(learner_config.device))
    with distributed.main_first():  # rank 0 makes the dataset and pi_ref, the other ranks find them
        experiment = make_domain(cfg).experiment(cfg, algorithm, learner_config)
    if learner_config.data_parallel and experiment.source.per_rank:  # the same policy, then each rank its own draws
        checkpoint.seed_everything(distributed.rank_seed(cfg.seed))
    check_batch_keys(algorithm, experiment.policy, experiment.source, experiment.data)
    learner = Learner(experiment.policy, algorithm, experiment.learner_config)
    run_dir = Path(cfg.run_dir)
    env = cfg.env.get("id", cfg.env.name)
    label = f"{cfg.algorithm.name} on {experiment.data} in {env}"
    config_text = OmegaConf.to_yaml(cfg, resolve=True)
    final = fit(learner, experiment.source, run_dir, loop, config_text, label, experiment.evaluate, experiment.metadata)
    main = distributed.is_main()
    distributed.stop()  # the ranks are done with each other: rank 0 writes the summary alone
    if not main:
        return None
    summary = {"algorithm": cfg.algorithm.name, "env": env, "data": experiment.data, "steps": learner.step}
    summary.update(experiment.about, episodes=loop.evaluation.episodes, **final)
    summary["learning_curve"] = str(learning_curve(run_dir, label, experiment.score))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
