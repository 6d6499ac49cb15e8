"""The training loop: data source -> algorithm -> learner, with evaluation and checkpoints.

    train(cfg)             builds everything from a composed config and runs one experiment
    fit(...)               the resumable loop, shared by experiments and by pi_ref's training
    reference_policy(...)  pi_ref = BC on the full dataset, trained once and cached per dataset
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from tensordict import TensorDict
from torch import nn
from torchrl.data import ReplayBuffer
from tqdm.auto import tqdm

from rlsft import checkpoint
from rlsft.algorithms import make_algorithm
from rlsft.algorithms.bc import BC
from rlsft.data import TrajectoryDataset, curate, load_dataset, trajectory_buffer
from rlsft.envs import env_dims, evaluate_policy, normalized_score
from rlsft.errors import RLSFTError, reason
from rlsft.learner import Learner, LearnerConfig, resolve_device
from rlsft.metrics import MetricsLogger
from rlsft.policies import make_policy

CHECKPOINT = "checkpoint.pt"


def fit(
    learner: Learner,
    buffer: ReplayBuffer,
    run_dir: Path,
    cfg: DictConfig,
    label: str,
    evaluate: Callable[[int], dict[str, float]] | None = None,
    metadata: dict | None = None,
    resume: bool = True,
) -> dict[str, float]:
    """Run `learner` to `learner.config.steps`, resuming from `<run_dir>/checkpoint.pt` if any.

    `evaluate(episodes)` runs every `evaluation.every` steps and once at the end; the final
    evaluation's metrics are returned. `metadata` is stored in every checkpoint.
    """
    checkpoint_path = run_dir / CHECKPOINT
    if checkpoint_path.exists():
        resume_from(checkpoint_path, learner, label, resume)
    logger = MetricsLogger(run_dir, resume_step=learner.step)
    total = learner.config.steps
    state = {"config": OmegaConf.to_yaml(cfg), "label": label, **(metadata or {})}
    with tqdm(total=total, initial=learner.step, desc=label, disable=not cfg.progress, dynamic_ncols=True) as bar:
        while learner.step < total:
            metrics = learner.train_step(buffer.sample())
            step = learner.step
            if step % cfg.log_every == 0 or step == total:
                bar.set_postfix(loss=f"{logger.log('train', step, metrics)['loss']:.4g}")
            if evaluate is not None and cfg.evaluation.every and step % cfg.evaluation.every == 0 and step < total:
                logger.log("eval", step, evaluate(cfg.evaluation.interim_episodes))
            if step % cfg.checkpoint_every == 0 or step == total:
                state.update(learner=learner.state_dict(), rng=checkpoint.rng_state())
                checkpoint.save_atomic(state, checkpoint_path)
            bar.update()
    final = logger.log("eval", learner.step, evaluate(cfg.evaluation.episodes)) if evaluate is not None else {}
    logger.close()
    return final


def resume_from(path: Path, learner: Learner, label: str, resume: bool) -> None:
    """Restore learner and RNG states from the checkpoint of the same run; never overwrite another."""
    if not resume:
        raise RLSFTError(f"{path} already exists and resume=false; pass another run_dir= or delete that run.")
    state = checkpoint.load(path, map_location=learner.device)
    if state.get("label") != label:
        raise RLSFTError(
            f"{path} belongs to another run ({state.get('label')!r}, not {label!r}); pass another run_dir= to keep both."
        )
    learner.load_state_dict(state["learner"])
    checkpoint.set_rng_state(state["rng"])


@torch.no_grad()
def reference_log_prob(reference: nn.Module, trajectories: TensorDict, chunk: int = 256) -> torch.Tensor:
    """log pi_ref(a_t|s_t) [N, T] for a whole dataset, once: pi_ref and the data are frozen."""
    device = next(reference.parameters()).device
    return torch.cat([reference.log_prob(part.to(device)).cpu() for part in trajectories.split(chunk)])


def check_dataset_fits_env(dataset: TrajectoryDataset, env_id: str, observation_dim: int, action_dim: int) -> None:
    data_obs = dataset.trajectories["observation"].shape[-1]
    data_act = dataset.trajectories["action"].shape[-1]
    if (data_obs, data_act) != (observation_dim, action_dim):
        raise RLSFTError(
            f"Dataset {dataset.name} has observations of dim {data_obs} and actions of dim {data_act}, but"
            f" {env_id} has {observation_dim} and {action_dim}; choose the env the data was recorded in (env=...)."
        )


def score_range(dataset: TrajectoryDataset, env_cfg: DictConfig) -> tuple[float, float]:
    """Minari's reference scores when the dataset carries them, else the env's D4RL ones."""
    if dataset.ref_min_score is not None and dataset.ref_max_score is not None:
        return float(dataset.ref_min_score), float(dataset.ref_max_score)
    return float(env_cfg.ref_min_score), float(env_cfg.ref_max_score)


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


def learner_settings(config: DictConfig) -> LearnerConfig:
    """The learner block, type-checked against LearnerConfig (a string lr is caught here)."""
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(LearnerConfig), config))
    except OmegaConfBaseException as error:
        raise RLSFTError(f"Bad learner setting ({reason(error)}); fix that override.") from error


def new_policy(cfg: DictConfig, dataset: TrajectoryDataset, observation_dim: int, action_dim: int) -> nn.Module:
    policy = make_policy(cfg.policy, observation_dim, action_dim)
    if policy.normalize_observations:
        policy.fit_observation_normalizer(dataset.trajectories)
    return policy


def reference_policy(
    dataset: TrajectoryDataset, cfg: DictConfig, observation_dim: int, action_dim: int
) -> nn.Module:
    """pi_ref: BC on every trajectory with `reference.learner` settings (method.md §4).

    Cached under `<data_dir>/references/<key>/`, keyed by the data's content, the policy
    and learner settings and the seed; an interrupted training resumes there.
    """
    settings = OmegaConf.to_yaml({"policy": cfg.policy, "learner": cfg.reference.learner, "seed": cfg.seed})
    key = hashlib.blake2b(f"{dataset.fingerprint}\n{settings}".encode(), digest_size=8).hexdigest()
    folder = Path(cfg.data_dir).expanduser() / "references" / f"{dataset.name.replace('/', '-')}-{key}"
    policy = new_policy(cfg, dataset, observation_dim, action_dim)
    policy_path = folder / "policy.pt"
    if not policy_path.exists():
        learner = Learner(policy, BC(), learner_settings(cfg.reference.learner))
        buffer = trajectory_buffer(dataset.trajectories, "uniform", learner.config.batch_size, learner.device)
        fit(learner, buffer, folder, cfg, label="pi_ref (BC on all data)")
        checkpoint.save_atomic({"policy": policy.state_dict()}, policy_path)
    policy.load_state_dict(checkpoint.load(policy_path)["policy"])
    return policy.requires_grad_(False)


def train(cfg: DictConfig) -> dict[str, float]:
    """One experiment: load and curate data, build policy and algorithm, train, evaluate."""
    checkpoint.seed_everything(cfg.seed)
    observation_dim, action_dim = env_dims(cfg.env.id)
    dataset = load_dataset(cfg.data, cfg.data_dir)
    check_dataset_fits_env(dataset, cfg.env.id, observation_dim, action_dim)
    algorithm = make_algorithm(cfg.algorithm.name, OmegaConf.to_container(cfg.algorithm.options, resolve=True))
    learner_config = learner_settings(cfg.learner)
    trajectories = curate(dataset.trajectories, cfg.algorithm.curation.by, list(cfg.algorithm.curation.levels))

    if algorithm.init_from_reference or algorithm.requires_ref_log_prob:
        reference = reference_policy(dataset, cfg, observation_dim, action_dim).to(resolve_device(learner_config.device))
        if algorithm.requires_ref_log_prob:
            trajectories["ref_log_prob"] = reference_log_prob(reference, trajectories)
    if algorithm.init_from_reference:
        policy = copy.deepcopy(reference).requires_grad_(True)
    else:
        policy = new_policy(cfg, dataset, observation_dim, action_dim)

    learner = Learner(policy, algorithm, learner_config)
    buffer = trajectory_buffer(trajectories, algorithm.sampling, learner_config.batch_size, learner.device)
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    scores = score_range(dataset, cfg.env)

    def evaluate(episodes: int) -> dict[str, float]:
        return evaluation_metrics(policy, cfg.env, episodes, cfg.seed + 10_000, scores)

    label = f"{cfg.algorithm.name} on {dataset.name} in {cfg.env.id}"
    final = fit(learner, buffer, run_dir, cfg, label, evaluate, {"score_range": list(scores)}, cfg.resume)
    summary = {
        "algorithm": cfg.algorithm.name,
        "env": cfg.env.id,
        "data": dataset.name,
        "steps": learner.step,
        "trajectories_kept": len(trajectories),
        "trajectories_total": len(dataset.trajectories),
        "episodes": cfg.evaluation.episodes,
        **final,
    }
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
