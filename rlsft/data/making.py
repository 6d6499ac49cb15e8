"""Behaviour datasets made the way D4RL made them, from policies trained by rlsft's own PPO or SAC.

    random         uniform random actions
    medium         the training run's snapshot whose return is closest to a third of the expert's
    expert         the run's final policy
    medium-replay  what the agent saw until it reached medium, rebuilt by rolling out the
                   recorded snapshots of that training run, from the untrained policy
                   (step 0) to medium, each for half the frames of the interval on either side
    medium-expert  medium and expert episodes, half each

Behaviour actions are sampled from the policy (PPO's Gaussian, SAC's squashed Gaussian) and clipped to
the action space. The policies ship in the package rlsft.behaviour (`v<N>/<env>/`), written by `rlsft data
policies` from a PPO or SAC run with snapshots (rlsft.data.policy_export); each record names the policy that
acts (`policy`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import gymnasium
import numpy as np
import torch
from minari import EpisodeData
from omegaconf import OmegaConf
from tensordict import TensorDict

from rlsft import checkpoint
from rlsft.data.minari_io import MINARI_KEYS, dataset_lock, find_minari, steps_of, write_minari
from rlsft.data.trajectories import flat_to_trajectories
from rlsft.envs.control.mujoco import ControlEnv
from rlsft.envs.control.vector_env import make_env
from rlsft.errors import RLSFTError
from rlsft.policies import Policy, make_policy

KINDS = ("random", "medium", "expert", "medium-replay", "medium-expert")
# The datasets' versions, each made from its own behaviour policies (package data, behaviour/v<N>/<env>/):
# v0 from PPO at 1M frames; v1 from the stronger of PPO and SAC per env (issue 15), judged on SAC's seed 0;
# v2 that choice judged again on more SAC seeds; v3 the same choice with SAC trained for 1M steps, as D4RL's
# and CleanRL's; v4 v3's but for hopper, chosen among SAC's three 1M-step seeds by their expert data (each env's
# record.json names the run its policies come from, and v4's hopper record every seed it was chosen from).
VERSIONS = (0, 1, 2, 3, 4)
POLICY_DIR = Path(__file__).parents[1] / "behaviour"
ActionFn = Callable[[np.ndarray], np.ndarray]


def policy_folder(version: int) -> Path:
    """Where the behaviour policies of the datasets' version `version` ship."""
    if version not in VERSIONS:
        raise RLSFTError(f"version={version} is not a dataset version rlsft makes; choose one of {list(VERSIONS)}.")
    return POLICY_DIR / f"v{version}"


def dataset_id(env_name: str, kind: str, steps: int | None, version: int = 0) -> str:
    return f"rlsft/{env_name}/{kind}{'' if steps is None else f'-s{steps}'}-v{version}"


def parse_dataset_id(spec: str | None) -> tuple[str, str, int | None, int] | None:
    """(env name, kind, steps, version) of an id `dataset_id` makes, else None."""
    match = re.fullmatch(r"rlsft/(\w+)/([a-z-]+?)(?:-s(\d+))?-v(\d+)", spec if isinstance(spec, str) else "")
    if match is None or match.group(2) not in KINDS or int(match.group(4)) not in VERSIONS:
        return None
    return match.group(1), match.group(2), int(match.group(3)) if match.group(3) else None, int(match.group(4))


def record_episodes(act: ActionFn, env_id: str, steps: int, num_envs: int, seed: int) -> list[EpisodeData]:
    """Complete episodes of `act` in `num_envs` parallel envs until they hold `steps` steps or more.

    `steps` is a minimum: every episode that ends on the step that reaches it is kept, so the
    episodes hold up to `num_envs` episodes more than it needs (8 envs of 1000-step episodes,
    which end together, record 504,000 steps for 500,000). Episodes still running then are
    dropped, so every episode ends in a termination or a time-out, as in Minari.
    """
    envs = gymnasium.vector.SyncVectorEnv(
        [lambda: make_env(env_id)] * num_envs, autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP
    )
    observation, _ = envs.reset(seed=seed)
    low, high = envs.single_action_space.low, envs.single_action_space.high
    running = [{"observations": [observation[i]], "actions": [], "rewards": []} for i in range(num_envs)]
    episodes: list[EpisodeData] = []
    recorded = 0
    while recorded < steps:
        action = np.clip(act(observation), low, high).astype(np.float32)
        observation, reward, terminated, truncated, info = envs.step(action)
        for i, episode in enumerate(running):
            episode["actions"].append(action[i])
            episode["rewards"].append(reward[i])
            if not (terminated[i] or truncated[i]):
                episode["observations"].append(observation[i])
                continue
            episode["observations"].append(info["final_obs"][i])
            length = len(episode["actions"])
            terminations, truncations = np.zeros(length, dtype=bool), np.zeros(length, dtype=bool)
            terminations[-1], truncations[-1] = terminated[i], truncated[i] and not terminated[i]
            episodes.append(
                EpisodeData(
                    id=len(episodes),
                    observations=np.array(episode["observations"]),
                    actions=np.array(episode["actions"]),
                    rewards=np.array(episode["rewards"]),
                    terminations=terminations,
                    truncations=truncations,
                    infos={},
                )
            )
            recorded += length
            running[i] = {"observations": [observation[i]], "actions": [], "rewards": []}
    envs.close()
    return episodes


def behaviour_record(env_name: str, root: Path) -> dict:
    """What `rlsft data policies` wrote for the env in the policy folder `root`: the policy, returns, replay."""
    path = root / env_name / "record.json"
    if not path.is_file():
        shipped = sorted(p.parent.name for p in root.glob("*/record.json"))
        raise RLSFTError(
            f"No behaviour policies ship in {root.name} for env {env_name!r} (it has {shipped}); use one of those envs,"
            f" kind=random, another version=, or make them with `rlsft train algorithm=ppo env={env_name}"
            f" evaluation.snapshots=true run_dir=<dir>` (or algorithm=sac) and `rlsft data policies env={env_name}"
            f" run_dir=<dir> version=<N>`."
        )
    return json.loads(path.read_text())


def load_behaviour(env_name: str, name: str, root: Path) -> Policy:
    """A shipped behaviour policy: `medium`, `expert` or a `replay/...` snapshot."""
    record = behaviour_record(env_name, root)
    policy = make_policy(
        OmegaConf.create(record["policy"]), observation_dim=record["observation_dim"], action_dim=record["action_dim"]
    )
    policy.load_state_dict(checkpoint.load(root / env_name / f"{name}.pt")["policy"])
    return policy


def sampler(policy: Policy) -> ActionFn:
    device = next(policy.parameters()).device

    def act(observation: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            observation = torch.as_tensor(observation, dtype=torch.float32, device=device)
            return policy.distribution(observation).sample().cpu().numpy()

    return act


def policy_trajectories(policy: Policy, env_id: str, steps: int, seed: int, num_envs: int = 8) -> TensorDict:
    """Complete episodes of `policy`'s sampled actions (`steps` steps, the last episodes finished), as trajectories:
    the data of an iterated-SFT round on control. The actions draw from torch's RNG, the envs from `seed`."""
    episodes = record_episodes(sampler(policy), env_id, steps, num_envs, seed)
    flat = {key: value.numpy() for key, value in steps_of(episodes).items()}
    return flat_to_trajectories(**flat, source=f"episodes of the policy in {env_id}", keys=MINARI_KEYS)


def behaviour_episodes(
    env: ControlEnv, kind: str, steps: int | None, seed: int, num_envs: int, policy_root: Path
) -> list[EpisodeData]:
    """The episodes of dataset `kind`: D4RL's recipe with the shipped behaviour policies."""
    budget = steps or 1_000_000

    def record(act: ActionFn, count: int, offset: int = 0) -> list[EpisodeData]:
        return record_episodes(act, env.id, count, num_envs, seed + offset)

    def behaviour(name: str) -> ActionFn:
        return sampler(load_behaviour(env.name, name, policy_root))

    if kind == "random":
        space = make_env(env.id).action_space
        rng = np.random.default_rng(seed)
        return record(lambda obs: rng.uniform(space.low, space.high, (len(obs), *space.shape)), budget)
    if kind in ("medium", "expert"):
        return record(behaviour(kind), budget)
    if kind == "medium-expert":
        return record(behaviour("medium"), budget // 2) + record(behaviour("expert"), budget - budget // 2, 1)
    # medium-replay: each recorded snapshot for its share of the frames it was trained on
    meta = behaviour_record(env.name, policy_root)
    scale = (steps or sum(meta["replay_frames"])) / sum(meta["replay_frames"])
    episodes = []
    for index, (name, frames) in enumerate(zip(meta["replay"], meta["replay_frames"])):
        episodes += record(behaviour(name), max(1, round(frames * scale)), index)
    return episodes


def make_dataset(
    env: ControlEnv,
    kind: str,
    steps: int | None,
    data_dir: str,
    seed: int = 0,
    num_envs: int = 8,
    version: int = 0,
    policy_root: Path | None = None,
) -> str:
    """Write the dataset `kind` of `version` for the env under `data_dir` unless it is there; return its id.
    Its behaviour policies come from `policy_root` (a folder of <env>/ folders), by default the version's own.
    `steps` (None: 1M) is a minimum, each part (a medium-expert half, a medium-replay snapshot) rounded up to
    whole episodes of the `num_envs` parallel envs: see `record_episodes`."""
    if kind not in KINDS:
        raise RLSFTError(f"Unknown dataset kind {kind!r}; choose one of {list(KINDS)}.")
    if (steps is not None and steps < 1) or num_envs < 1 or seed < 0:
        raise RLSFTError(
            f"steps={steps}, num_envs={num_envs}, seed={seed}: steps (null: 1M) and num_envs must be positive and"
            " seed not negative; fix the override."
        )
    policy_root = policy_folder(version) if policy_root is None else policy_root
    ident = dataset_id(env.name, kind, steps, version)
    if find_minari(ident, data_dir) is not None:  # found without the lock, so a read-only data_dir serves too
        return ident
    # A sweep's runs on a fresh data_dir make their dataset at once: one makes it, the others wait and find it.
    with dataset_lock(ident, data_dir):
        if find_minari(ident, data_dir) is not None:
            return ident
        # The behaviour policies sample their actions from torch's RNG: seeded here, so that the data depend
        # on `seed` alone, not on what the calling process drew before (a run that makes its dataset
        # continues exactly as one that found it made).
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            episodes = behaviour_episodes(env, kind, steps, seed, num_envs, policy_root)
        write_minari(
            ident, episodes, env.id, data_dir, env.ref_min_score, env.ref_max_score,
            description=f"rlsft {kind} data for {env.id}, made like D4RL's (rlsft data make)",
        )  # fmt: skip
    return ident


def ensure_dataset(spec: str, env: ControlEnv, data_dir: str) -> None:
    """Make a dataset named like `rlsft/<env>/<kind>-v<N>` on first use."""
    made = parse_dataset_id(spec)
    if made is None or find_minari(spec, data_dir) is not None:
        return
    env_name, kind, steps, version = made
    if env_name != env.name:
        raise RLSFTError(f"Dataset {spec} is recorded in {env_name} but env={env.name}; make them agree.")
    make_dataset(env, kind, steps, data_dir, version=version)
