"""One experiment from a composed config: a batch source, an algorithm, the learner, evaluation.

The algorithm's `source` decides where batches come from: an offline dataset, curated and
sampled from a replay buffer (the SFT family), or fresh rollouts (PPO). Everything after
that, the loop, checkpoints, metrics and evaluation, is shared.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from torch import nn

from rlsft import checkpoint
from rlsft.algorithms import Algorithm, make_algorithm
from rlsft.behaviour import ensure_dataset
from rlsft.data import TrajectoryDataset, TrajectorySource, curate, load_dataset, trajectory_buffer
from rlsft.envs import env_dims, evaluate_policy, normalized_score
from rlsft.envs.rollouts import RolloutSource
from rlsft.errors import RLSFTError
from rlsft.learner import Learner, LearnerConfig, resolve_device
from rlsft.loop import BatchSource, fit
from rlsft.plots import learning_curve
from rlsft.policies import make_policy
from rlsft.reference import reference_log_prob, reference_policy


def check_dataset_fits_env(dataset: TrajectoryDataset, env_id: str, observation_dim: int, action_dim: int) -> None:
    data_obs = dataset.trajectories["observation"].shape[-1]
    data_act = dataset.trajectories["action"].shape[-1]
    if (data_obs, data_act) != (observation_dim, action_dim):
        raise RLSFTError(
            f"Dataset {dataset.name} has observations of dim {data_obs} and actions of dim {data_act}, but"
            f" {env_id} has {observation_dim} and {action_dim}; choose the env the data was recorded in (env=...)."
        )


def evaluation_metrics(
    policy: nn.Module, env_cfg: DictConfig, episodes: int, seed: int, scores: tuple[float, float]
) -> dict[str, float]:
    returns = evaluate_policy(policy, env_cfg.id, episodes, seed, max_steps=env_cfg.max_episode_steps)
    normalized = normalized_score(returns, *scores)
    return {
        "return_mean": returns.mean().item(),
        "return_std": returns.std(unbiased=False).item(),
        "normalized_score": normalized.mean().item(),
        "normalized_score_std": normalized.std(unbiased=False).item(),
    }


def offline_experiment(
    cfg: DictConfig, algorithm: Algorithm, learner_config: LearnerConfig, dims: tuple[int, int]
) -> tuple[nn.Module, BatchSource, tuple[float, float], dict]:
    """Curated trajectories in a replay buffer, and a policy from scratch or from pi_ref."""
    ensure_dataset(cfg.data, cfg.env, cfg.data_dir)
    dataset = load_dataset(cfg.data, cfg.data_dir)
    check_dataset_fits_env(dataset, cfg.env.id, *dims)
    trajectories = curate(dataset.trajectories, cfg.algorithm.curation.by, list(cfg.algorithm.curation.levels))
    device = resolve_device(learner_config.device)
    if algorithm.init_from_reference or algorithm.requires_ref_log_prob:
        reference = reference_policy(dataset, cfg, *dims).to(device)
        if algorithm.requires_ref_log_prob:
            trajectories["ref_log_prob"] = reference_log_prob(reference, trajectories)
    if algorithm.init_from_reference:
        policy = copy.deepcopy(reference).requires_grad_(True)
    else:
        policy = make_policy(cfg.policy, *dims, dataset.trajectories)
    source = TrajectorySource(trajectory_buffer(trajectories, algorithm.sampling, learner_config.batch_size, device))
    if dataset.ref_min_score is not None and dataset.ref_max_score is not None:  # Minari's own, else D4RL's
        scores = (float(dataset.ref_min_score), float(dataset.ref_max_score))
    else:
        scores = (float(cfg.env.ref_min_score), float(cfg.env.ref_max_score))
    about = {"data": dataset.name, "trajectories_kept": len(trajectories), "trajectories_total": len(dataset.trajectories)}
    return policy, source, scores, about


def rollout_experiment(
    cfg: DictConfig, learner_config: LearnerConfig, dims: tuple[int, int]
) -> tuple[nn.Module, BatchSource, tuple[float, float], dict]:
    """A fresh policy and a collector over parallel copies of the env."""
    device = resolve_device(learner_config.device)
    policy = make_policy(cfg.policy, *dims).to(device)
    options = {key: value for key, value in cfg.algorithm.rollout.items() if key != "frames"}
    source = RolloutSource(policy, cfg.env.id, device=device, seed=cfg.seed, **options)
    scores = (float(cfg.env.ref_min_score), float(cfg.env.ref_max_score))
    return policy, source, scores, {"frames": cfg.algorithm.rollout.frames}


def train(cfg: DictConfig) -> dict[str, float | str]:
    """Build the experiment `cfg` describes, train it (resuming if it ran before), evaluate it."""
    checkpoint.seed_everything(cfg.seed)
    dims = env_dims(cfg.env.id)
    algorithm = make_algorithm(cfg.algorithm.name, OmegaConf.to_container(cfg.algorithm.options, resolve=True))
    learner_config = LearnerConfig.from_config(cfg.learner)
    if algorithm.source == "rollouts":
        policy, source, scores, about = rollout_experiment(cfg, learner_config, dims)
    else:
        policy, source, scores, about = offline_experiment(cfg, algorithm, learner_config, dims)
    learner = Learner(policy, algorithm, learner_config)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    def evaluate(episodes: int) -> dict[str, float]:
        return evaluation_metrics(policy, cfg.env, episodes, cfg.seed + 10_000, scores)

    label = f"{cfg.algorithm.name} on {about.get('data', 'rollouts')} in {cfg.env.id}"
    final = fit(learner, source, run_dir, cfg, label, evaluate, {"score_range": list(scores)}, cfg.resume)
    summary = {"algorithm": cfg.algorithm.name, "env": cfg.env.id, "steps": learner.step, **about}
    summary.update(episodes=cfg.evaluation.episodes, **final, learning_curve=str(learning_curve(run_dir, label)))
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
