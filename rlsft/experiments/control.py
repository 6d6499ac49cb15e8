"""Control experiments: offline datasets for the SFT family, fresh MuJoCo rollouts for PPO, a replay buffer for SAC."""

from __future__ import annotations

import copy
import re
import warnings

import torch
from omegaconf import DictConfig
from tensordict import TensorDict
from torch import nn

from rlsft.algorithms import Algorithm
from rlsft.data import TrajectoryDataset, curate, load_dataset
from rlsft.data.making import ensure_dataset, policy_trajectories
from rlsft.envs.control import ControlEnv, env_dims, evaluate_policy, normalized_score
from rlsft.errors import RLSFTError
from rlsft.experiments.base import Domain, Evaluate, Experiment, curated_source, curation_setting
from rlsft.experiments.reference import reference_policy
from rlsft.learner import LearnerConfig, resolve_device
from rlsft.options import checked_options
from rlsft.policies import frozen_log_prob, make_policy
from rlsft.sources.replay import ReplaySource
from rlsft.sources.rollouts import RolloutSource

# A collecting source's arguments that are not options
SUPPLIED = ("policy", "env_id", "device", "seed", "data_parallel")


def env_name(env_id: str) -> str:
    """What names an env across versions and id styles: its name without namespace, version or case.

    A D4RL-style id (`<env>-<dataset>-v2`) is named by its first word, so Hopper-v5, Hopper-v4,
    mujoco/Hopper-v5 and hopper-medium-replay-v2 are all "hopper", and Walker2d-v5 is "walker2d".
    """
    name = re.sub(r"-v\d+$", "", env_id.strip().rsplit("/", 1)[-1])
    return name.split("-", 1)[0].lower()


def check_dataset_env(dataset: TrajectoryDataset, env_id: str) -> None:
    """Refuse data recorded in another env; warn, once per load, where the dataset records none."""
    if dataset.env_id is None:
        warnings.warn(
            f"Dataset {dataset.source or dataset.name} does not record the env it comes from, so rlsft cannot check"
            f" that it is {env_id}'s; record it (a D4RL file's env_id attribute, a Minari env_spec) to have it checked.",
            UserWarning,
            stacklevel=3,
        )
    elif env_name(dataset.env_id) != env_name(env_id):
        raise RLSFTError(
            f"Dataset {dataset.name} was recorded in {dataset.env_id} but this run's env is {env_id}; pass the"
            f" dataset's env (env=...) or a dataset recorded in {env_id} (data=...)."
        )


def check_dataset_fits_env(dataset: TrajectoryDataset, env_id: str, observation_dim: int, action_dim: int) -> None:
    """The dataset's spaces must be the env's, and its recorded env (where it has one) the same env."""
    data_obs = dataset.trajectories["observation"].shape[-1]
    data_act = dataset.trajectories["action"].shape[-1]
    if (data_obs, data_act) != (observation_dim, action_dim):
        raise RLSFTError(
            f"Dataset {dataset.name} has observations of dim {data_obs} and actions of dim {data_act}, but"
            f" {env_id} has {observation_dim} and {action_dim}; choose the env the data was recorded in (env=...)."
        )
    check_dataset_env(dataset, env_id)  # after the dims: envs of equal dims (Walker2d, HalfCheetah) pass those


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
    cfg: DictConfig, algorithm: Algorithm, learner_config: LearnerConfig, policy: nn.Module | None
) -> Experiment:
    """Curated trajectories in a replay buffer, and a policy from scratch or from pi_ref (unless one is given)."""
    env, dims = ControlEnv.from_config(cfg.env), env_dims(cfg.env.id)
    ensure_dataset(cfg.data, env, cfg.data_dir)
    dataset = load_dataset(cfg.data, cfg.data_dir)
    check_dataset_fits_env(dataset, cfg.env.id, *dims)
    curation = curation_setting(cfg.algorithm.curation)
    trajectories = curate(dataset.trajectories, *curation)
    device = resolve_device(learner_config.device)
    reads_reference, from_reference = "ref_log_prob" in algorithm.in_keys, algorithm.init_from_reference
    if reads_reference or (from_reference and policy is None):
        reference = reference_policy(dataset, cfg, *dims).to(device)
        if reads_reference:
            trajectories["ref_log_prob"] = frozen_log_prob(reference, trajectories)
    if policy is None and from_reference:
        policy = copy.deepcopy(reference).requires_grad_(True)
    elif policy is None:
        policy = make_policy(cfg.policy, dataset.trajectories, observation_dim=dims[0], action_dim=dims[1])
    learner_config = learner_config.sized_for(len(trajectories))

    def draw() -> TensorDict:  # a round of iterated SFT: the policy's episodes, the envs seeded from the saved RNG
        seed = int(torch.randint(2**31 - 1, ()))
        return policy_trajectories(policy, cfg.env.id, cfg.algorithm.rounds.steps, seed).to(device)

    source = curated_source(
        trajectories, algorithm, learner_config, device, cfg.algorithm.rounds.every, draw, policy, curation
    )
    if dataset.ref_min_score is not None and dataset.ref_max_score is not None:  # Minari's own, else D4RL's
        scores = (float(dataset.ref_min_score), float(dataset.ref_max_score))
    else:
        scores = (float(env.ref_min_score), float(env.ref_max_score))
    return Experiment(
        policy, source, learner_config, episode_evaluation(policy, cfg.env, cfg.seed + 10_000, scores), dataset.name,
        "normalized_score",
        about={"trajectories_kept": len(trajectories), "trajectories_total": len(dataset.trajectories)},
        metadata={"score_range": list(scores)},
    )  # fmt: skip


ONLINE = {"rollouts": (RolloutSource, "rollout"), "replay": (ReplaySource, "replay")}  # source, its config key


def online_experiment(
    cfg: DictConfig, algorithm: Algorithm, learner_config: LearnerConfig, policy: nn.Module | None
) -> Experiment:
    """A fresh policy (unless one is given) and its own env steps: rollouts of parallel copies of the env (PPO),
    or one env stepped into a replay buffer, a transition a gradient step (SAC)."""
    env, device = ControlEnv.from_config(cfg.env), resolve_device(learner_config.device)
    scores = (float(env.ref_min_score), float(env.ref_max_score))
    observation_dim, action_dim = env_dims(cfg.env.id)
    if policy is None:
        policy = make_policy(cfg.policy, observation_dim=observation_dim, action_dim=action_dim).to(device)
    if algorithm.source == "rollouts" and not hasattr(policy, "value"):
        raise RLSFTError(
            f"{algorithm.name} learns a value function beside the policy, and policy={cfg.policy.name} has none;"
            " use policy=actor_critic."
        )
    source_class, key = ONLINE[algorithm.source]
    settings = cfg.algorithm[key]
    options = {name: value for name, value in settings.items() if name != "frames"}
    source = source_class(
        policy, cfg.env.id, device=device, seed=cfg.seed, data_parallel=learner_config.data_parallel,
        **checked_options(source_class, options, f"algorithm.{key}", SUPPLIED),
    )  # fmt: skip
    return Experiment(
        policy, source, learner_config.sized_for(0), episode_evaluation(policy, cfg.env, cfg.seed + 10_000, scores),
        # the frames collected, every rank's: whole rollouts, so not always algorithm.<key>.frames itself
        algorithm.source, "normalized_score", about={"frames": lambda: source.frames},
        metadata={"score_range": list(scores)},
    )  # fmt: skip


def episode_evaluation(policy: nn.Module, env_cfg: DictConfig, seed: int, scores: tuple[float, float]) -> Evaluate:
    """evaluate(episodes): the deterministic policy's returns and normalised scores, episodes seeded from `seed`."""
    return lambda episodes: evaluation_metrics(policy, env_cfg, episodes, seed, scores)


class Control(Domain):
    """MuJoCo envs: offline datasets for the SFT family, fresh rollouts for PPO; scored by D4RL's normalisation."""

    name = "control"

    def experiment(
        self, cfg: DictConfig, algorithm: Algorithm, learner_config: LearnerConfig, policy: nn.Module | None = None
    ) -> Experiment:
        if algorithm.source in ONLINE:
            return online_experiment(cfg, algorithm, learner_config, policy)
        return offline_experiment(cfg, algorithm, learner_config, policy)

    def evaluated_policy(self, cfg: DictConfig, seed: int, metadata: dict) -> tuple[nn.Module, Evaluate]:
        observation_dim, action_dim = env_dims(cfg.env.id)
        policy = make_policy(cfg.policy, observation_dim=observation_dim, action_dim=action_dim)
        return policy, episode_evaluation(policy, cfg.env, seed, tuple(metadata["score_range"]))
