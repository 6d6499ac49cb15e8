"""On-policy batches: a torchrl collector over parallel MuJoCo envs, GAE, shuffled minibatches.

Each refill collects `num_envs * frames_per_env` steps with the current policy (in this
process, or in `workers` processes of num_envs / workers envs each), scales the
rewards by the running std of each env's discounted return (gymnasium's NormalizeReward,
as CleanRL uses), computes GAE with torchrl (bootstrapping through truncations from the
final observation), then serves `epochs` passes of `minibatches` shuffled minibatches. A
minibatch holds single steps viewed as length-1 trajectories [M, 1] with a `mask`, so the
loss sees the same batch contract as every other algorithm.

Under data parallel the `num_envs` envs are split over the ranks in order (seeds included), each
rank collecting with its own RNG and serving minibatches of its own steps; the observation and
return statistics fold in every rank's steps, so all ranks keep one policy.
"""

from __future__ import annotations

import copy
import functools
import signal
from collections.abc import Iterator

import torch
from tensordict import TensorDict
from torchrl.collectors import Collector, MultiSyncCollector
from torchrl.objectives.value.functional import generalized_advantage_estimate
from torchrl.weight_update import SharedMemWeightSyncScheme

from rlsft import distributed
from rlsft.checkpoint import decode_state, encode_state
from rlsft.envs.control.mujoco import TensorFunction
from rlsft.envs.control.vector_env import VectorControlEnv
from rlsft.errors import RLSFTError
from rlsft.running_moments import RunningMoments
from rlsft.sources.base import env_metrics
from rlsft.sources.minibatches import MinibatchQueue

REWARD_CLIP = 10.0  # gymnasium's NormalizeReward + CleanRL's TransformReward clip


def holds_worker_states(state: object, workers: int) -> bool:
    """Whether a checkpoint's `source.env` holds what `workers_episodes` writes for `workers` workers."""
    if not isinstance(state, dict):
        return False
    entries = [state.get(f"worker{i}") for i in range(workers)]
    return all(
        isinstance(entry, dict)
        and isinstance(entry.get("episodes"), dict)
        and isinstance(entry.get("rng"), torch.Tensor)
        for entry in entries
    )


class EpisodeCollector(Collector):
    """A worker of a multi-process collector whose state_dict holds its envs' running episodes and
    its process's RNG (it samples the actions), so that a resumed run continues them exactly."""

    def __init__(self, *args, **kwargs) -> None:
        # A worker leaves SIGTERM to the process that started it, which stops the run at a step and then ends its
        # workers (rlsft/stopping.py): a scheduler signals every process of a job (SLURM), and a worker it ended
        # first broke that step, the stop's checkpoint with it.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        super().__init__(*args, **kwargs)

    def state_dict(self) -> dict:
        episodes = {"episodes": self.env.episodes_state(), "rng": torch.get_rng_state()}
        return {**super().state_dict(), "episodes": encode_state(episodes)}

    def load_state_dict(self, state: dict, **kwargs) -> None:
        saved = decode_state(state["episodes"])
        self.env.load_episodes(saved["episodes"])
        self.reset()  # the next full reset keeps the loaded episodes: the policy's next input is theirs
        torch.set_rng_state(saved["rng"])


class RolloutSource:
    per_rank = True  # under data parallel each rank steps its own envs
    # What advantage_steps writes: each step a length-1 trajectory with its value, advantage and target.
    keys = ("observation", "action", "sample_log_prob", "value", "advantage", "value_target", "mask")

    def __init__(
        self,
        policy: torch.nn.Module,
        env_id: str,
        num_envs: int,
        frames_per_env: int,
        epochs: int,
        minibatches: int,
        gamma: float,
        lmbda: float,
        normalize_rewards: bool,
        device: torch.device,
        seed: int,
        workers: int = 1,
        data_parallel: bool = False,
    ) -> None:
        own = distributed.share(num_envs, "algorithm.rollout.num_envs", data_parallel)
        num_envs, seed = own.stop - own.start, seed + own.start  # this rank's envs: seeds as in one process
        counts = {"num_envs": num_envs, "frames_per_env": frames_per_env, "epochs": epochs, "minibatches": minibatches}
        discounts_ok = 0 <= gamma <= 1 and 0 <= lmbda <= 1
        # Two steps or more a minibatch: its advantages are standardised, and one step's std is NaN
        if min(counts.values()) < 1 or 2 * minibatches > num_envs * frames_per_env or not discounts_ok:
            raise RLSFTError(
                f"algorithm.rollout {counts} must be positive, with at most half as many minibatches as the"
                f" rollout's num_envs * frames_per_env steps (two steps a minibatch at least), and gamma={gamma},"
                f" lmbda={lmbda} in [0, 1]; fix the override."
            )
        if workers < 1 or num_envs % workers:
            raise RLSFTError(
                f"algorithm.rollout.num_envs={num_envs} cannot be split evenly over workers={workers};"
                " make num_envs a multiple of workers."
            )
        self.policy, self.device = policy, device
        self.gamma, self.lmbda = gamma, lmbda
        self.normalize_rewards = normalize_rewards
        self.env_id, self.num_envs, self.workers, self.seed = env_id, num_envs, workers, seed
        self.env = VectorControlEnv(env_id, num_envs) if workers == 1 else None  # else the workers own the envs
        if self.env is not None:
            self.env.set_seed(seed)
        self.frames_per_batch = num_envs * frames_per_env
        self.collector: Collector | MultiSyncCollector | None = None  # built at the first rollout
        self.rollouts: Iterator[TensorDict] | None = None
        self.worker_policy: torch.nn.Module | None = None  # the workers' CPU copy of the policy
        self.weight_scheme: SharedMemWeightSyncScheme | None = None
        self.workers_state: dict | None = None  # the workers' episodes, loaded before they start
        self.return_moments = RunningMoments()
        self.discounted_return = torch.zeros(num_envs, dtype=torch.float64)
        self.episode_return = torch.zeros(num_envs, dtype=torch.float64)
        self.finished_returns: list[float] = []
        self.frames = 0
        self.queue = MinibatchQueue(epochs, minibatches, device=device)
        self.unseen_observations: torch.Tensor | None = None

    def collect(self) -> TensorDict:
        """The next [num_envs, frames_per_env] rollout with the current policy.

        The collector is built at the first call, so that it starts from the episodes a
        resumed run restored (load_state_dict), not from new ones.
        """
        if self.rollouts is None:
            # Building a collector runs the actor once to learn its outputs: in a forked RNG, so
            # that a resumed run draws as a straight one.
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                self.collector = self.in_process_collector() if self.workers == 1 else self.multi_process_collector()
            if self.workers_state is not None:
                self.collector.load_state_dict(self.encoded_workers_state(self.workers_state))
            self.rollouts = iter(self.collector)
        if self.worker_policy is not None:  # shared with the workers: they sample with the current weights
            self.worker_policy.load_state_dict(self.policy.state_dict())
        return next(self.rollouts)

    def in_process_collector(self) -> Collector:
        """A torchrl Collector over this process's envs, sampling with the policy itself.

        On CPU no policy_device: the collector then skips a device cast per step. Trajectory ids
        are not needed: episode boundaries come from the done flags."""
        actor = TensorFunction(self.policy.explore, "observation", ["action", "sample_log_prob"])
        return Collector(
            self.env, actor, frames_per_batch=self.frames_per_batch, total_frames=-1,
            policy_device=self.device if self.device.type != "cpu" else None, track_traj_ids=False,
            auto_register_policy_transforms=False, trust_policy=True,
        )  # fmt: skip

    def multi_process_collector(self) -> MultiSyncCollector:
        """torchrl's MultiSyncCollector: `workers` processes, each stepping num_envs / workers envs and
        sampling with a CPU copy of the policy in shared memory, refreshed before every rollout;
        their batches are concatenated along the env dim. This process keeps its torch threads."""
        self.worker_policy = copy.deepcopy(self.policy).cpu()
        self.weight_scheme = SharedMemWeightSyncScheme()
        collector = MultiSyncCollector(
            [functools.partial(VectorControlEnv, self.env_id, self.num_envs // self.workers)] * self.workers,
            TensorFunction(self.worker_policy.explore, "observation", ["action", "sample_log_prob"]),
            frames_per_batch=self.frames_per_batch, total_frames=-1, collector_class=EpisodeCollector, cat_results=0,
            auto_register_policy_transforms=False, trust_policy=True, num_threads=torch.get_num_threads(),
            num_sub_threads=1, weight_sync_schemes={"policy": self.weight_scheme},
        )  # fmt: skip
        collector.set_seed(self.seed)
        return collector

    def close(self) -> None:
        """Stops the worker processes, if any."""
        if isinstance(self.collector, MultiSyncCollector):
            self.collector.shutdown()
            self.weight_scheme.shutdown()
        self.collector = self.rollouts = None

    def sample(self) -> TensorDict:
        return self.queue.next(self.refill)

    def metrics(self) -> dict[str, float]:
        """Environment frames so far and the mean raw return of episodes finished since last asked (all ranks')."""
        finished, self.finished_returns = self.finished_returns, []
        return env_metrics(self.frames, finished)

    @torch.no_grad()
    def refill(self) -> None:
        # Observation statistics move only between rollouts, folding in the previous one, so
        # that sample_log_prob and the losses over a rollout see one and the same standardisation.
        if self.unseen_observations is not None:
            self.policy.update_observation_statistics(self.unseen_observations)
        rollout = self.collect().to(self.device)  # [num_envs, frames_per_env]
        self.unseen_observations = distributed.rows_of_all_ranks(rollout["observation"].flatten(0, 1))
        self.frames += rollout.numel() * distributed.world_size()  # every rank's envs
        reward = self.scale_rewards(rollout["next", "reward"].squeeze(-1), rollout["next", "done"].squeeze(-1))
        self.queue.fill(self.advantage_steps(rollout, reward))

    @torch.no_grad()
    def advantage_steps(self, rollout: TensorDict, reward: torch.Tensor) -> TensorDict:
        """GAE over a [num_envs, T] rollout, flattened to [N, 1] steps for the loss."""
        value = self.policy.value(rollout["observation"])
        advantage, value_target = generalized_advantage_estimate(
            self.gamma,
            self.lmbda,
            value.unsqueeze(-1),
            self.policy.value(rollout["next", "observation"]).unsqueeze(-1),
            reward.unsqueeze(-1),
            done=rollout["next", "done"],
            terminated=rollout["next", "terminated"],
        )
        steps = {
            "observation": rollout["observation"],
            "action": rollout["action"],
            "sample_log_prob": rollout["sample_log_prob"],
            "value": value,
            "advantage": advantage.squeeze(-1),
            "value_target": value_target.squeeze(-1),
            "mask": torch.ones(rollout.shape, dtype=torch.bool, device=value.device),
        }
        count = rollout.numel()  # each step becomes a length-1 trajectory: entries [N, 1, ...]
        return TensorDict({key: x.reshape(count, 1, *x.shape[2:]) for key, x in steps.items()}, batch_size=[count])

    def scale_rewards(self, reward: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """r / std(discounted return), clipped to +-10; also records raw episode returns."""
        reward_cpu, done_cpu = reward.double().cpu(), done.cpu()
        discounted = torch.empty_like(reward_cpu)
        for t in range(reward_cpu.shape[1]):
            self.discounted_return = self.discounted_return * self.gamma + reward_cpu[:, t]
            discounted[:, t] = self.discounted_return
            self.episode_return += reward_cpu[:, t]
            ended = done_cpu[:, t]
            self.finished_returns.extend(self.episode_return[ended].tolist())
            self.discounted_return[ended] = 0.0
            self.episode_return[ended] = 0.0
        if not self.normalize_rewards:
            return reward
        self.return_moments.update(distributed.rows_of_all_ranks(discounted.reshape(-1)))
        return (reward / self.return_moments.std().to(reward)).clamp(-REWARD_CLIP, REWARD_CLIP)

    def state_dict(self) -> dict:
        """Everything the next batches depend on, for an exact resume: the envs' episodes, the
        minibatches left of the current rollout and the statistics in progress."""
        return {
            "env": self.env.episodes_state() if self.env is not None else self.workers_episodes(),
            "queue": self.queue.state_dict(),
            "unseen_observations": self.unseen_observations,
            "return_moments": self.return_moments.state_dict(),
            "discounted_return": self.discounted_return,
            "episode_return": self.episode_return,
            "finished_returns": torch.tensor(self.finished_returns, dtype=torch.float64),
            "frames": self.frames,
        }

    def workers_episodes(self) -> dict | None:
        """The workers' episodes and RNG states, as tensors and plain containers (a checkpoint holds
        no pickled bytes), and the collector's counts: what MultiSyncCollector.load_state_dict needs."""
        if self.collector is None:
            return self.workers_state  # not started (or resumed and not started yet)
        full = self.collector.state_dict()
        workers = {f"worker{i}": decode_state(full[f"worker{i}"]["episodes"]) for i in range(self.workers)}
        return {**workers, "frames": full["frames"], "iter": full["iter"]}

    def encoded_workers_state(self, state: dict) -> dict:
        """`workers_episodes`' state in the form the worker processes receive it."""
        workers = {f"worker{i}": {"episodes": encode_state(state[f"worker{i}"])} for i in range(self.workers)}
        return {**workers, "frames": state["frames"], "iter": state["iter"]}

    def load_state_dict(self, state: dict) -> None:
        if self.env is not None:
            self.env.load_episodes(state["env"])
        else:
            if not holds_worker_states(state["env"], self.workers):
                raise ValueError(f"the checkpoint holds no episode states of {self.workers} collector workers")
            self.workers_state = state["env"]
        self.queue.load_state_dict(state["queue"])
        self.unseen_observations = state["unseen_observations"]
        self.return_moments.load_state_dict(state["return_moments"])
        self.discounted_return, self.episode_return = state["discounted_return"], state["episode_return"]
        self.finished_returns = state["finished_returns"].tolist()
        self.frames = state["frames"]
