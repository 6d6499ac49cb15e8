"""pi_ref for the control experiments: BC on the full dataset, its own small experiment, trained once and cached (method.md §4)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from torch import nn

from rlsft import checkpoint
from rlsft.algorithms.bc import BC
from rlsft.cache_key import cache_key
from rlsft.data import TrajectoryDataset
from rlsft.learner import Learner, LearnerConfig
from rlsft.loop import LoopConfig, fit
from rlsft.policies import make_policy
from rlsft.sources.trajectories import TrajectorySource


def reference_policy(dataset: TrajectoryDataset, cfg: DictConfig, observation_dim: int, action_dim: int) -> nn.Module:
    """BC on every trajectory with the `reference.learner` settings, frozen.

    Cached under `<data_dir>/references/<dataset>-<key>/`, keyed by the data's content, the
    policy and learner settings and the seed; an interrupted training resumes there.
    """
    # Resolved: reference.learner's sizes are interpolations of the budget's, and the key must hold their values
    chosen = {"policy": cfg.policy, "learner": cfg.reference.learner, "seed": cfg.seed}
    settings = OmegaConf.to_yaml({name: OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig)
                                  else value for name, value in chosen.items()})  # fmt: skip
    key = cache_key([f"{dataset.fingerprint}\n{settings}"], digest_size=8)
    folder = Path(cfg.data_dir).expanduser() / "references" / f"{dataset.name.replace('/', '-')}-{key}"
    policy = make_policy(cfg.policy, dataset.trajectories, observation_dim=observation_dim, action_dim=action_dim)
    policy_path = folder / "policy.pt"
    if not policy_path.exists():  # trained here or read from the cache, the run draws the same numbers after
        with checkpoint.rng_preserved():
            learner = Learner(policy, BC(), LearnerConfig.from_config(cfg.reference.learner, "reference.learner"))
            # pi_ref's own run: the outer run's logging and progress, no evaluation or snapshots
            loop = LoopConfig(log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every, progress=cfg.progress)
            source = TrajectorySource(dataset.trajectories, "uniform", learner.config.batch_size, learner.device)
            fit(learner, source, folder, loop, settings, label="pi_ref (BC on all data)")
        checkpoint.save_atomic({"policy": policy.state_dict()}, policy_path)
    policy.load_state_dict(checkpoint.load(policy_path)["policy"])
    return policy.requires_grad_(False)
