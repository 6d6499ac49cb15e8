import gymnasium
import numpy as np
import pytest
import torch
from tensordict import TensorDictBase
from torchrl.envs import EnvBase
from torchrl.envs.utils import check_env_specs

from rlsft.envs.control.vector_env import VectorControlEnv


def test_specs_match_what_the_env_returns() -> None:
    check_env_specs(VectorControlEnv("Hopper-v5", 2), seed=0)


def out_of_bounds_actions(tensordict: TensorDictBase) -> TensorDictBase:
    """Gaussian actions three times the action range: most must be clipped."""
    return tensordict.set("action", 3.0 * torch.randn(*tensordict.batch_size, 3))


def test_copies_replay_plain_gymnasium_envs_through_clipping_and_partial_resets() -> None:
    env = VectorControlEnv("Hopper-v5", 2)
    env.set_seed(7)
    torch.manual_seed(0)
    rollout = env.rollout(80, out_of_bounds_actions, break_when_any_done=False)
    assert rollout["next", "done"].sum() >= 2  # episodes ended and the copies were reset mid-rollout
    for i in range(2):
        reference = gymnasium.make("Hopper-v5")
        observation, _ = reference.reset(seed=7 + i)
        for t in range(80):
            np.testing.assert_allclose(rollout["observation"][i, t].numpy(), observation, rtol=1e-6, atol=1e-6)
            action = np.clip(rollout["action"][i, t].numpy(), -1.0, 1.0)
            observation, reward, terminated, truncated, _ = reference.step(action)
            # the next observation of a finished episode is its real final one, not a reset's
            np.testing.assert_allclose(rollout["next", "observation"][i, t].numpy(), observation, rtol=1e-6, atol=1e-6)
            assert rollout["next", "reward"][i, t].item() == np.float32(reward)
            assert rollout["next", "terminated"][i, t].item() == terminated
            assert rollout["next", "truncated"][i, t].item() == truncated
            if terminated or truncated:
                observation, _ = reference.reset()


def test_finished_copies_stay_as_they_ended_until_torchrl_resets_them() -> None:
    env = VectorControlEnv("Hopper-v5", 3)
    env.set_seed(0)
    torch.manual_seed(0)
    rollout = env.rollout(1000, out_of_bounds_actions, break_when_any_done=False, break_when_all_done=True)
    done = rollout["next", "done"].squeeze(-1)
    assert done[:, -1].all() and not done[:, 0].any()
    for i in range(3):
        end = int(done[i].nonzero()[0])
        if end == done.shape[1] - 1:
            continue  # the last copy to finish ends the rollout
        after = rollout[i, end + 1 :]
        assert after["next", "done"].all()
        assert (after["next", "observation"] == rollout["next", "observation"][i, end]).all()


@pytest.mark.parametrize("env_id", ["Hopper-v5", "Ant-v5"])  # Ant's reward reads positions MuJoCo derives
def test_a_loaded_state_continues_the_episodes_exactly_through_resets(env_id: str) -> None:

    def run(env: VectorControlEnv, tensordict: TensorDictBase, steps: range) -> tuple[TensorDictBase, list]:
        nexts = []
        for t in steps:
            step = env.step(tensordict.set("action", actions[t]))
            nexts.append(step["next"].clone())
            tensordict = step["next"].exclude("reward")
            if tensordict["done"].any():  # a partial reset, as a collector does
                tensordict = env.reset(tensordict.set("_reset", tensordict["done"].clone()))
        return tensordict, nexts

    straight = VectorControlEnv(env_id, 2)
    torch.manual_seed(0)
    actions = 3.0 * torch.randn(100, *straight.action_spec.shape)
    straight.set_seed(3)
    tensordict, _ = run(straight, straight.reset(), range(30))
    state = straight.episodes_state()
    _, expected = run(straight, tensordict, range(30, 100))

    resumed = VectorControlEnv(env_id, 2)
    resumed.set_seed(0)  # a pending seed must not reseed the loaded episodes' later resets
    resumed.load_episodes(state)
    _, resumed_nexts = run(resumed, resumed.reset(), range(30, 100))
    assert sum(int(n["done"].sum()) for n in expected) >= 2  # resets happened after the load
    for a, b in zip(expected, resumed_nexts, strict=True):
        assert (a == b).all()


def test_the_collector_step_matches_torchrls_generic_step_and_partial_reset() -> None:
    fast, generic = VectorControlEnv("Hopper-v5", 3), VectorControlEnv("Hopper-v5", 3)
    fast.set_seed(5)
    generic.set_seed(5)
    fast_input, generic_input = fast.reset(), generic.reset()
    torch.manual_seed(0)
    resets = 0
    for _ in range(60):
        action, log_prob = 3.0 * torch.randn(3, 3), torch.randn(3)  # a policy's outputs, carried as step_mdp does
        fast_step, fast_input = fast.step_and_maybe_reset(fast_input.set("action", action).set("log_prob", log_prob))
        generic_step, generic_input = EnvBase._step_and_maybe_reset(
            generic, generic_input.set("action", action.clone()).set("log_prob", log_prob.clone())
        )
        for fast_out, generic_out in ((fast_step, generic_step), (fast_input, generic_input)):
            assert set(fast_out.keys(True)) == set(generic_out.keys(True))
            assert (fast_out == generic_out).all()
        resets += int(fast_step["next", "done"].sum())
    assert resets >= 3
