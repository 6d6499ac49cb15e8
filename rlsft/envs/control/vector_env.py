"""Parallel copies of one gymnasium env as a torchrl env, for collectors and evaluation.

The torchrl side is an `EnvBase` with the few entries PPO and evaluation read
(observation, action, reward, done, terminated, truncated). Nothing autoresets: torchrl
resets the copies that finished (a partial reset), so the "next" observation of a
truncated step is the real final observation that GAE bootstraps from, with no final-
observation bookkeeping. Actions are clipped and observations cast to float32 once per
batch, and a collector's step, step_mdp and partial reset run as one pass. Against torchrl's
GymWrapper over gymnasium's SyncVectorEnv, this cuts most of the per-step cost outside MuJoCo
(benchmarks/env_sampling.py).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable

import gymnasium
import mujoco
import numpy as np
import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, Unbounded
from torchrl.envs import EnvBase

from rlsft.errors import RLSFTError, reason


def mujoco_warning(message: str) -> None:
    """MuJoCo's warnings as Python's, each shown once. The deprecation notes MuJoCo 4 prints
    for gymnasium's own model files at every env creation (HalfCheetah: one per env copy, per
    evaluation) go to the debug log: neither a user nor rlsft can act on them."""
    if "deprecated" in message:
        logging.getLogger(__name__).debug("MuJoCo: %s", message)
    else:
        warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)


mujoco.set_mju_user_warning(mujoco_warning)


def make_env(env_id: str) -> gymnasium.Env:
    """gymnasium.make, with a config-level error for an id gymnasium does not know."""
    try:
        return gymnasium.make(env_id)
    except gymnasium.error.Error as error:
        raise RLSFTError(
            f"Cannot make env {env_id!r} ({reason(error)}); pick an installed gymnasium id in env.id."
        ) from error


INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION  # what mj_step advances, warm start included
DERIVED_POSITIONS = ("xpos", "xipos")  # body frames and centres of mass, as the last step left them
OUTPUT_KEYS = ("observation", "done", "terminated", "truncated")  # what a step or reset returns, besides the reward


class VectorControlEnv(EnvBase):
    """`num_envs` copies of a gymnasium MuJoCo env, batch shape [num_envs].

    A copy whose episode ended stays as it ended (zero reward, still done) until torchrl
    resets it: collectors reset finished copies at once, and early-stopping rollouts
    (`break_when_all_done`) keep stepping the batch until the last copy finishes. This is
    why the copies are a plain list, not a gymnasium vector env, which can only autoreset
    or refuse such steps. No device: tensors stay on the CPU where gymnasium made them,
    and torchrl casts nothing per step.
    """

    def __init__(self, env_id: str, num_envs: int) -> None:
        self.envs = [make_env(env_id) for _ in range(num_envs)]
        super().__init__(device=None, batch_size=torch.Size([num_envs]))
        observation_space, action_space = self.envs[0].observation_space, self.envs[0].action_space
        self.action_low, self.action_high = action_space.low, action_space.high
        self.observation = np.zeros((num_envs, *observation_space.shape), dtype=np.float32)
        self.terminated, self.truncated = np.zeros(num_envs, dtype=bool), np.zeros(num_envs, dtype=bool)
        self.next_seed: int | None = None
        self.keep_episodes = False  # set by load_episodes: the next full reset resumes them
        shape = self.batch_size
        bound = torch.as_tensor(action_space.low), torch.as_tensor(action_space.high)
        self.observation_spec = Composite(
            observation=Unbounded((*shape, *observation_space.shape), dtype=torch.float32), shape=shape
        )
        self.action_spec = Bounded(*(b.expand(*shape, -1).clone() for b in bound), dtype=torch.float32)
        self.reward_spec = Unbounded((*shape, 1), dtype=torch.float32)
        flag = Categorical(2, (*shape, 1), dtype=torch.bool)
        self.done_spec = Composite(done=flag, terminated=flag.clone(), truncated=flag.clone(), shape=shape)

    def _set_seed(self, seed: int | None) -> None:
        self.next_seed = seed  # copy i takes seed + i at its next reset, as gymnasium seeds vector envs

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs) -> TensorDictBase:
        mask = None if tensordict is None else tensordict.get("_reset", None)
        if mask is None and self.keep_episodes:  # a collector built after load_episodes starts where it was
            self.keep_episodes = False
            return self.current(reward=None)
        self.reset_copies(range(len(self.envs)) if mask is None else np.flatnonzero(mask.reshape(-1).numpy()))
        return self.current(reward=None)

    def reset_copies(self, copies: Iterable[int]) -> None:
        for i in copies:
            seed = None if self.next_seed is None else self.next_seed + int(i)
            self.observation[i], _ = self.envs[i].reset(seed=seed)
            self.terminated[i] = self.truncated[i] = False
        self.next_seed = None

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        action = np.clip(tensordict.get("action").cpu().numpy(), self.action_low, self.action_high)
        reward = np.zeros(len(self.envs), dtype=np.float32)
        for i in np.flatnonzero(~(self.terminated | self.truncated)):
            self.observation[i], reward[i], self.terminated[i], self.truncated[i], _ = self.envs[i].step(action[i])
        return self.current(reward)

    def _step_and_maybe_reset(self, tensordict: TensorDictBase) -> tuple[TensorDictBase, TensorDictBase]:
        """EnvBase's step, step_mdp and partial reset of the finished copies, in one pass.

        Collectors call this at every step (through step_and_maybe_reset, so env.compile() still
        applies). The generic version re-derives the reward and done keys from the specs each
        time, about 15% of sampling time (benchmarks/env_sampling.py); this env's keys are
        fixed. The outputs are the generic version's: the stepped tensordict with its "next"
        entries, and the policy's next input. That input keeps the root entries the step does
        not produce (the action, the policy's other outputs), zeroed for the copies just reset,
        as step_mdp and a partial reset do.
        """
        next_tensordict = self._step(tensordict)
        tensordict.set("next", next_tensordict)
        carried = TensorDict._new_unsafe(
            {key: value for key, value in tensordict.items() if key != "next" and key not in OUTPUT_KEYS},
            batch_size=self.batch_size,
        )
        finished = self.terminated | self.truncated
        if finished.any():
            self.reset_copies(np.flatnonzero(finished))
            outputs = self.last_outputs()
            carried = carried.masked_fill(torch.from_numpy(finished), 0)
        else:
            outputs = {key: next_tensordict.get(key) for key in OUTPUT_KEYS}
        return tensordict, TensorDict._new_unsafe({**outputs, **dict(carried.items())}, batch_size=self.batch_size)

    def last_outputs(self) -> dict[str, torch.Tensor]:
        """The copies' last observations and done flags (OUTPUT_KEYS), copied out."""
        terminated, truncated = (
            torch.from_numpy(self.terminated).unsqueeze(-1),
            torch.from_numpy(self.truncated).unsqueeze(-1),
        )
        return {
            "observation": torch.from_numpy(self.observation.copy()),
            "done": terminated | truncated,
            "terminated": terminated.clone(),
            "truncated": truncated.clone(),
        }

    def current(self, reward: np.ndarray | None) -> TensorDictBase:
        """The copies' last outputs, with the step's reward if any."""
        entries = self.last_outputs()
        if reward is not None:
            entries["reward"] = torch.from_numpy(reward).unsqueeze(-1)
        return TensorDict._new_unsafe(entries, batch_size=self.batch_size)

    def episodes_state(self) -> dict:
        """The running episodes, for an exact resume (not nn.Module's state_dict, which an EnvBase
        also has): what the copies' next steps depend on: MuJoCo's integration state (positions,
        velocities, time, solver warm start), the body positions MuJoCo derived at the last
        step, each copy's random generator and step count within its time limit, and the
        last outputs.

        The derived positions lag the state by one substep after mj_step, and some envs read
        them before stepping (Ant's and Humanoid's forward reward), so they are kept as they
        are rather than recomputed from the state.
        """
        simulators, positions = [], []
        for env in self.envs:
            model, data = env.unwrapped.model, env.unwrapped.data
            state = np.empty(mujoco.mj_stateSize(model, INTEGRATION))
            mujoco.mj_getState(model, data, state, INTEGRATION)
            simulators.append(torch.from_numpy(state))
            positions.append({name: torch.from_numpy(getattr(data, name).copy()) for name in DERIVED_POSITIONS})
        return {
            "simulator": simulators,
            "positions": positions,
            "rng": [env.unwrapped.np_random.bit_generator.state for env in self.envs],
            "elapsed_steps": [env.get_wrapper_attr("_elapsed_steps") for env in self.envs],  # TimeLimit's count
            "observation": torch.from_numpy(self.observation.copy()),
            "terminated": torch.from_numpy(self.terminated.copy()),
            "truncated": torch.from_numpy(self.truncated.copy()),
        }

    def load_episodes(self, state: dict) -> None:
        """Continue the saved episodes exactly; the next full reset keeps them instead of starting new ones."""
        copies = zip(self.envs, state["simulator"], state["positions"], state["rng"], state["elapsed_steps"])
        for env, simulator, positions, rng, elapsed in copies:
            env.reset()  # the wrappers' own bookkeeping; everything the reset drew is overwritten below
            data = env.unwrapped.data
            mujoco.mj_setState(env.unwrapped.model, data, simulator.numpy(), INTEGRATION)
            for name, value in positions.items():
                getattr(data, name)[:] = value.numpy()
            env.unwrapped.np_random.bit_generator.state = rng
            env.set_wrapper_attr("_elapsed_steps", elapsed)
        self.observation[:] = state["observation"].numpy()
        self.terminated[:], self.truncated[:] = state["terminated"].numpy(), state["truncated"].numpy()
        self.keep_episodes, self.next_seed = True, None  # the loaded generators replace any pending seed

    def close(self, *, raise_if_closed: bool = True) -> None:
        for env in self.envs:
            env.close()
        super().close(raise_if_closed=raise_if_closed)
