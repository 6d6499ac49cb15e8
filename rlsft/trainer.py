"""One experiment from a composed config: a batch source, an algorithm, the learner, evaluation.

The domain (control or text) and the algorithm's `source` decide where batches come from:
an offline dataset, curated and sampled from a replay buffer (the SFT family), fresh
rollouts (PPO on MuJoCo, GRPO on text), or each part's own (a mix). Everything after that,
the loop, checkpoints, metrics and evaluation, is shared.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from rlsft import checkpoint, distributed
from rlsft.errors import RLSFTError, reason
from rlsft.experiments.configured import configured_algorithm, configured_experiment
from rlsft.learner import Learner, LearnerConfig, resolve_device
from rlsft.loop import LoopConfig, fit
from rlsft.plots import learning_curve


def import_module_named(module: str) -> None:
    try:
        importlib.import_module(module)
    except ImportError as error:
        raise RLSFTError(
            f"Cannot import {module!r} listed in imports ({reason(error)}); put it on PYTHONPATH."
        ) from error


def train(cfg: DictConfig) -> dict[str, float | str] | None:
    """Build the experiment `cfg` describes, train it (resuming if it ran before), evaluate it.

    Under torchrun with learner.distributed=ddp every rank trains; rank 0 returns the summary, the others None.
    """
    distributed.adopt_slurm_tasks()  # the tasks of a submitit job on SLURM: the ranks of this run
    if not (OmegaConf.is_list(cfg.imports) and all(isinstance(name, str) for name in cfg.imports)):
        # a lone name would be imported letter by letter, a number is import_module's TypeError
        raise RLSFTError(f"imports={cfg.imports} must be a list of module names, e.g. imports=[my_package.my_module].")
    for module in cfg.imports:
        import_module_named(module)
    loop = LoopConfig.from_config(cfg)
    checkpoint.seed_everything(checkpoint.checked_seed(cfg.seed))
    algorithm = configured_algorithm(cfg)
    learner_config = LearnerConfig.from_config(cfg.learner)
    if learner_config.data_parallel:
        distributed.start(resolve_device(learner_config.device))
    with distributed.main_first():  # rank 0 makes the dataset and pi_ref, the other ranks find them
        experiment = configured_experiment(cfg, algorithm, learner_config)
    if learner_config.data_parallel and experiment.source.per_rank:  # the same policy, then each rank its own draws
        checkpoint.seed_everything(distributed.rank_seed(cfg.seed))
    learner = Learner(experiment.policy, algorithm, experiment.learner_config)
    run_dir = Path(cfg.run_dir)
    env = cfg.env.get("id", cfg.env.name)
    label = f"{cfg.algorithm.name} on {experiment.data} in {env}"
    config_text = OmegaConf.to_yaml(cfg, resolve=True)
    final = fit(learner, experiment.source, run_dir, loop, config_text, label, experiment.evaluate, experiment.metadata)
    summary = {"algorithm": cfg.algorithm.name, "env": env, "data": experiment.data, "steps": learner.step}
    summary.update({key: value() if callable(value) else value for key, value in experiment.about.items()})
    # A text evaluation reports the held-out prompts it had (fewer than asked in a smaller split); control, all asked.
    summary.update(final, episodes=int(final.get("episodes", loop.evaluation.episodes)))
    score, main = experiment.score, distributed.is_main()
    del learner, experiment  # an FSDP policy holds the process group: let go of it before the group is destroyed
    distributed.stop()  # the ranks are done with each other: rank 0 writes the summary alone
    if not main:
        return None
    summary["learning_curve"] = str(learning_curve(run_dir, label, score))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
