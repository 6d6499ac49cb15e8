"""The learner's schedule, precision choice, and checkpoint files."""

from __future__ import annotations

import csv
import math
import pickle

import pytest
import torch
from omegaconf import OmegaConf
from tensordict import TensorDict

from rlsft import checkpoint
from rlsft.algorithms.bc import BC
from rlsft.errors import RLSFTError
from rlsft.learner import Learner, LearnerConfig, warmup_cosine
from rlsft.metrics import MetricsLogger
from rlsft.policies import GaussianMLP


def test_warmup_then_cosine_to_zero() -> None:
    factor = warmup_cosine(warmup_steps=4, total_steps=14, schedule="cosine")
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == 1.0
    assert factor(9) == pytest.approx(0.5)
    assert factor(14) == pytest.approx(0.0, abs=1e-12)
    assert warmup_cosine(0, 10, "constant")(7) == 1.0
    assert [warmup_cosine(0, 4, "linear")(s) for s in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]


def test_learner_applies_the_schedule_and_defaults_to_fp32_on_cpu() -> None:
    config = LearnerConfig(steps=10, lr=1e-3, warmup_steps=2, device="cpu")
    learner = Learner(GaussianMLP(3, 2), BC(), config)
    assert not learner.autocast and learner.device.type == "cpu"
    assert learner.optimizer.param_groups[0]["lr"] == pytest.approx(0.5e-3)


@pytest.mark.parametrize(
    "field, value",
    [("optimizer", "sgd"), ("schedule", "step"), ("precision", "fp8"), ("nonfinite", "ignore"), ("lr", -1.0),
     ("lr", 0.0), ("eps", -1e-8), ("weight_decay", -0.1), ("betas", (0.9, 1.5)), ("warmup_steps", -1),
     ("warmup_fraction", 1.0), ("grad_clip", 0.0), ("batch_size", 0), ("steps", 0)],
)  # fmt: skip
def test_bad_learner_settings_are_explained(field: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):  # built in Python: the field's name
        LearnerConfig(**{field: value})
    for where in ("learner", "reference.learner"):  # from a config: the key it holds it at
        with pytest.raises(RLSFTError, match=f"^{where}.{field}"):
            LearnerConfig.from_config(OmegaConf.create({field: value}), where)


def test_checkpoint_round_trip_with_rng_states(tmp_path) -> None:
    checkpoint.seed_everything(3)
    state = {"weights": torch.randn(4), "step": 7, "rng": checkpoint.rng_state()}
    expected_next = torch.rand(3)
    checkpoint.save_atomic(state, tmp_path / "run" / "checkpoint.pt")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["checkpoint.pt"]  # no temporary left behind
    loaded = checkpoint.load(tmp_path / "run" / "checkpoint.pt")  # weights_only=True inside
    torch.rand(5)  # move the RNG on, then restore it
    checkpoint.set_rng_state(loaded["rng"])
    assert torch.equal(torch.rand(3), expected_next)
    assert loaded["step"] == 7 and torch.equal(loaded["weights"], state["weights"])


def test_a_failed_write_keeps_the_old_checkpoint(tmp_path) -> None:
    path = tmp_path / "checkpoint.pt"
    checkpoint.save_atomic({"step": 1}, path)
    with pytest.raises((pickle.PicklingError, AttributeError)):  # which one depends on where the lambda lives
        checkpoint.save_atomic({"step": 2, "bad": lambda: None}, path)  # unpicklable
    assert checkpoint.load(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def ragged_batch(length: int) -> TensorDict:
    """4 trajectories of up to `length` steps, the first half as long: padding as real batches have it."""
    mask = torch.ones(4, length, dtype=torch.bool)
    mask[0, length // 2 :] = False
    observation, action = torch.randn(4, length, 3), torch.rand(4, length, 2) * 2 - 1
    return TensorDict({"observation": observation, "action": action, "mask": mask}, batch_size=[4])


# The switches are checked on every device this machine has: the CPU, and CUDA where present (a GPU machine
# runs `python -m pytest tests/test_learner.py -k "bf16 or compiled"`).
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def losses_over_steps(settings: dict, batches: list[TensorDict], device: str = "cpu") -> list[float]:
    """BC's loss at each step of a learner with `settings` on `device`, from one fixed initial policy."""
    torch.manual_seed(0)
    learner = Learner(GaussianMLP(3, 2, hidden_sizes=[16]), BC(), LearnerConfig(steps=len(batches), lr=1e-2,
                      warmup_steps=0, device=device, **settings))  # fmt: skip
    return [learner.train_step(batch.to(device))["loss"].item() for batch in batches]


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_autocast_gives_the_fp32_losses_within_2_percent(device) -> None:
    torch.manual_seed(1)
    batches = [ragged_batch(length) for length in (5, 7, 9)]
    fp32 = losses_over_steps({"precision": "fp32"}, batches, device)
    bf16 = losses_over_steps({"precision": "bf16"}, batches, device)
    assert all(math.isfinite(loss) for loss in bf16)
    assert bf16 == pytest.approx(fp32, rel=2e-2)


@pytest.mark.parametrize("device", DEVICES)
def test_a_compiled_loss_gives_the_eager_losses_within_1e_5(device) -> None:
    """learner.compile=true: one graph for batches of three lengths (dynamic shapes), the eager numbers."""
    torch.manual_seed(1)
    batches = [ragged_batch(length) for length in (5, 7, 9)]
    eager = losses_over_steps({}, batches, device)
    torch._dynamo.reset()  # counts graphs from here: the compiled run must make at least one
    compiled = losses_over_steps({"compile": True}, batches, device)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert compiled == pytest.approx(eager, rel=1e-5, abs=1e-5)


def test_metrics_csv_widens_for_a_metric_seen_late_and_truncates_on_resume(tmp_path) -> None:
    logger = MetricsLogger(tmp_path)
    logger.log("train", 1, {"loss": 1.0})
    logger.log("train", 2, {"loss": 0.5, "episode_return": 10.0})
    logger.log("train", 3, {"loss": 0.25})
    logger.close()
    rows = list(csv.DictReader((tmp_path / "train.csv").open()))
    assert [(r["step"], r["loss"], r["episode_return"]) for r in rows] == [
        ("1", "1.0", None), ("2", "0.5", "10.0"), ("3", "0.25", "")
    ]  # fmt: skip
    MetricsLogger(tmp_path, resume_step=2).close()  # a run resumed from step 2 rewrites step 3
    assert [r["step"] for r in csv.DictReader((tmp_path / "train.csv").open())] == ["1", "2"]


def trajectories(count: int = 8, steps: int = 5) -> TensorDict:
    return TensorDict(
        {"observation": torch.randn(count, steps, 3), "action": torch.rand(count, steps, 2) * 2 - 1,
         "mask": torch.ones(count, steps, dtype=torch.bool)},
        batch_size=[count],
    )  # fmt: skip


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_nonfinite_step_is_left_out_and_counted(bad: float) -> None:
    """The update of a step with a non-finite loss is not applied: parameters, Adam's moments and
    its step count stay bitwise as they were, and the step is counted (no host sync needed)."""
    torch.manual_seed(0)
    learner = Learner(GaussianMLP(3, 2), BC(), LearnerConfig(steps=10, lr=1e-3, warmup_steps=0, device="cpu"))
    batch = trajectories()
    learner.train_step(batch)
    before = checkpoint_copy(learner)
    poisoned = batch.clone()
    poisoned["observation"][0, 0, 0] = bad
    metrics = learner.train_step(poisoned)
    assert not math.isfinite(float(metrics["loss"])) and float(metrics["nonfinite_steps"]) == 1
    after = checkpoint_copy(learner)
    for name, tensor in before["policy"].items():
        assert torch.equal(tensor, after["policy"][name]), f"{name} changed by a non-finite step"
    assert torch.equal(torch.tensor(before["adam_steps"]), torch.tensor(after["adam_steps"]))
    assert learner.first_nonfinite_step() == 2
    metrics = learner.train_step(batch)  # a finite step afterwards is applied as usual
    assert float(metrics["nonfinite_steps"]) == 1 and not torch.equal(
        before["policy"]["mean_net.0.weight"], learner.policy.state_dict()["mean_net.0.weight"]
    )


def checkpoint_copy(learner: Learner) -> dict:
    state = learner.state_dict()
    return {
        "policy": {name: tensor.clone() for name, tensor in state["policy"].items()},
        "adam_steps": [float(entry["step"]) for entry in state["optimizer"]["state"].values()],
    }


@pytest.mark.parametrize("overrides, precision", [([], "fp32"), (["algorithm=sac"], "fp32"), (["algorithm=ppo"], "fp32"),
                                                  (["env=arithmetic"], "auto")])  # fmt: skip
def test_control_presets_train_in_fp32_and_the_llm_preset_autocasts_on_cuda(overrides, precision):
    """bf16 autocast on CUDA rounded a SAC critic's Q near 300 to steps of 2; only language models take it."""
    from rlsft.cli import compose_config

    assert compose_config("train", overrides).learner.precision == precision
