"""Off-policy batches (SAC): one env step of the current policy per gradient step, into a replay buffer.

The buffer (torchrl's, on the training device) keeps the last `buffer_size` transitions; each call
steps the env once with an action sampled from the policy, stores the transition and draws
`batch_size` transitions uniformly (CleanRL's sac_continuous_action: one update per env step). The
first call first fills the buffer with `learning_starts` steps of uniform random actions. The env
is rlsft's VectorControlEnv with one copy: a truncated step's next observation is its real final one
(bootstrapped from), a terminated one's is not bootstrapped (`terminated`). A transition is kept as the env
steps it, in torchrl's layout (`observation`, `action`, `next`: observation, reward, done, terminated,
truncated), and served as a length-1 trajectory, [B, 1] with a `mask`, the batch every loss reads; the buffer, the running
episode and the frame count are in the checkpoint, so a resumed run is exact.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torchrl.data import LazyTensorStorage, RandomSampler, TensorDictReplayBuffer

from rlsft import distributed
from rlsft.envs.control.vector_env import VectorControlEnv
from rlsft.errors import RLSFTError
from rlsft.sources.base import env_metrics


class ReplaySource:
    per_rank = True  # under data parallel each rank steps its own env into its own buffer
    keys = ("observation", "action", "next", "mask")

    def __init__(
        self,
        policy: torch.nn.Module,
        env_id: str,
        buffer_size: int,
        learning_starts: int,
        batch_size: int,
        device: torch.device,
        seed: int,
        data_parallel: bool = False,
    ) -> None:
        if buffer_size < batch_size or learning_starts < 1 or batch_size < 1:
            raise RLSFTError(
                f"algorithm.replay needs batch_size >= 1, learning_starts >= 1 and buffer_size >= batch_size (got"
                f" buffer_size={buffer_size}, learning_starts={learning_starts}, batch_size={batch_size}); fix them."
            )
        self.policy, self.device, self.learning_starts = policy, device, learning_starts
        self.env = VectorControlEnv(env_id, 1)
        # each rank its own stream (rank_seed), not seed + rank, which is another seed's rank 0
        self.env.set_seed(distributed.rank_seed(seed) if data_parallel else seed)
        self.low, self.high = (torch.as_tensor(bound) for bound in (self.env.action_low, self.env.action_high))
        self.buffer = TensorDictReplayBuffer(
            storage=LazyTensorStorage(buffer_size, device=device), sampler=RandomSampler(), batch_size=batch_size
        )
        self.frames, self.episode_return, self.finished_returns = 0, 0.0, []
        self.state: TensorDict | None = None  # the env's next input

    def act(self, observation: torch.Tensor) -> torch.Tensor:
        if self.frames < self.learning_starts:  # uniform over the action space, from torch's RNG (checkpointed)
            return self.low + (self.high - self.low) * torch.rand(observation.shape[0], self.low.shape[-1])
        return self.policy.distribution(observation.to(self.device)).sample().cpu()

    @torch.no_grad()
    def step(self) -> None:
        if self.state is None:
            self.state = self.env.reset()
        observation = self.state["observation"]
        action = self.act(observation)
        stepped, self.state = self.env.step_and_maybe_reset(
            TensorDict(observation=observation, action=action, batch_size=[1])
        )
        self.buffer.extend(stepped.select("observation", "action", "next").to(self.device))
        after = stepped["next"]
        self.frames += 1
        self.episode_return += float(after["reward"])
        if bool(after["done"]):
            self.finished_returns.append(self.episode_return)
            self.episode_return = 0.0

    def sample(self) -> TensorDict:
        while self.frames < self.learning_starts:
            self.step()
        self.step()
        batch = self.buffer.sample().unsqueeze(1)
        batch["mask"] = torch.ones(batch.batch_size, dtype=torch.bool, device=self.device)
        return batch

    def metrics(self) -> dict[str, float]:
        finished, self.finished_returns = self.finished_returns, []
        return env_metrics(self.frames, finished)

    def state_dict(self) -> dict:
        running = None if self.state is None else {"env": self.env.episodes_state(), "input": self.state.to_dict()}
        return {"frames": self.frames, "episode_return": self.episode_return, "buffer": self.buffer.state_dict(),
                "finished_returns": list(self.finished_returns), "running": running}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self.frames, self.episode_return = state["frames"], state["episode_return"]
        self.finished_returns = list(state["finished_returns"])
        self.buffer.load_state_dict(state["buffer"])
        if state["running"] is not None:
            self.env.load_episodes(state["running"]["env"])
            self.state = TensorDict(state["running"]["input"], batch_size=[1])

    def close(self) -> None:
        self.env.close()
