"""The resumable training loop: source -> learner, with metrics, evaluation and checkpoints."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from tqdm.auto import tqdm

from rlsft import checkpoint, distributed, stopping
from rlsft.errors import RLSFTError, RunStopped, reason
from rlsft.learner import Learner
from rlsft.metrics import MetricsLogger, WandbConfig, check_loggers, mirrors
from rlsft.sources.base import BatchSource

CHECKPOINT = "checkpoint.pt"
# The settings a resumed run may change (a key, or every key under it): its length, where it and its data live,
# where it runs (device, processes: resume_from checks a per-rank source's count), how it reports, and what a
# non-finite step does (the sentence that stops a run offers learner.nonfinite=skip to go on). Any other setting
# differing from the checkpoint's is another run.
RESUMABLE_CHANGES = (
    "learner.steps", "learner.epochs", "budget", "algorithm.steps", "algorithm.replay.frames",
    "algorithm.rollout.frames", "run_dir", "data_dir", "resume", "learner.device", "learner.compile",
    "learner.distributed", "generation.completions_per_call", "learner.nonfinite", "progress", "log_every",
    "checkpoint_every", "logger", "wandb", "evaluation", "algorithm.evaluation_every", "algorithm.checkpoint_every",
)  # fmt: skip
# Settings added since runs were made without them, with the value such a run had: resuming one compares it.
ADDED_SETTINGS = {"algorithm.options.critic_activation": "tanh"}  # SAC's critics before 2026-12-06 (torchrl's MLP)


@dataclass
class EvaluationConfig:
    """When and how the loop evaluates: `evaluation.*` in configs/train.yaml."""

    episodes: int = 10  # final evaluation (episodes, or held-out prompts for text)
    every: int = 0  # also at step 0 and every N gradient steps (0: only at the end)
    interim_episodes: int = 10  # episodes of those interim evaluations
    snapshots: bool = False  # keep the policy of each interim evaluation in <run_dir>/snapshots/


@dataclass
class LoopConfig:
    """How the loop logs, evaluates, checkpoints and resumes: the top-level keys of configs/train.yaml."""

    log_every: int = 10  # gradient steps between metric rows
    checkpoint_every: int = 500  # gradient steps between checkpoints (one is always written at the end)
    progress: bool = True  # show a progress bar
    resume: bool = True  # continue from <run_dir>/checkpoint.pt; false refuses to touch an existing run
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    logger: list[str] = field(default_factory=lambda: ["csv", "tensorboard"])  # csv (always), tensorboard, wandb
    wandb: WandbConfig = field(default_factory=WandbConfig)

    def __post_init__(self) -> None:
        check_loggers(self.logger)
        evaluation = self.evaluation
        if min(self.log_every, self.checkpoint_every, evaluation.episodes, evaluation.interim_episodes) < 1 or (
            evaluation.every < 0
        ):
            raise RLSFTError(
                "log_every, checkpoint_every, evaluation.episodes and evaluation.interim_episodes must be positive"
                " and evaluation.every not negative (0: only at the end); fix the override."
            )

    @classmethod
    def from_config(cls, config: DictConfig) -> LoopConfig:
        """These keys of a run's config, type-checked (`log_every=often` is caught here)."""
        resolved = OmegaConf.to_container(config, resolve=True)  # a resolver's own error reaches the CLI as it is
        settings = {key: resolved[key] for key in cls.__dataclass_fields__}
        try:
            return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), settings))
        except OmegaConfBaseException as error:
            raise RLSFTError(f"Bad run setting ({reason(error)}); fix that override.") from error


class TrainingClock:
    """Wall-clock seconds spent training, evaluations excluded, summed over resumed sessions:
    the x axis of accuracy-against-time curves."""

    def __init__(self, earlier_seconds: float = 0.0) -> None:
        self.earlier, self.start, self.excluded = earlier_seconds, time.perf_counter(), 0.0

    def seconds(self) -> float:
        return self.earlier + time.perf_counter() - self.start - self.excluded

    @contextmanager
    def paused(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.excluded += time.perf_counter() - start


def fit(
    learner: Learner,
    source: BatchSource,
    run_dir: Path,
    loop: LoopConfig,
    config_text: str,
    label: str,
    evaluate: Callable[[int], dict[str, float]] | None = None,
    metadata: dict | None = None,
) -> dict[str, float]:
    """Run `learner` to `learner.config.steps`, resuming from `<run_dir>/checkpoint.pt` if any.

    `evaluate(episodes)` runs every `loop.evaluation.every` steps and once at the end; the final
    evaluation's metrics are returned (a finished run's own, when it is run again). `config_text`
    (the run's resolved config) goes to `<run_dir>/config.yaml` and with `metadata` into every checkpoint.
    Under torchrun every rank trains and resumes; rank 0 alone evaluates and writes (the others return {}).
    SIGTERM ends the step in progress, checkpoints it and raises RunStopped (rlsft/stopping.py).
    """
    checkpoint_path = run_dir / CHECKPOINT
    if stopping.requested():  # a later job of a sweep whose process was asked to stop
        raise RunStopped(f"{label} was not started: this process was asked to stop (SIGTERM).")
    clock = TrainingClock(
        resume_from(checkpoint_path, learner, source, label, loop.resume, config_text)
        if checkpoint_path.exists()
        else 0
    )
    # The run is allowed in run_dir (a fresh one, or its own checkpoint): only now does the folder change.
    state = {"config": config_text, "label": label, **(metadata or {})}
    main = distributed.is_main()
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(state["config"])
        for folder in (run_dir, run_dir / "snapshots"):
            checkpoint.remove_interrupted_writes(folder)
    elif not learner.sharded:
        evaluate = None  # rank 0 evaluates the policy every rank holds (a sharded one, every rank: each its share)
    total, saved_step = learner.config.steps, learner.step
    sinks = mirrors(loop.logger, run_dir, learner.step, loop.wandb, yaml.safe_load(config_text)) if main else []
    with (
        closing(source),  # a source's worker processes stop, even on errors
        MetricsLogger(run_dir, resume_step=learner.step, write=main, mirrors=sinks) as logger,
        stopping.sigterm_requests_a_stop(),
    ):
        finished = logger.last_row("eval")
        if learner.step >= total and finished is not None and finished["step"] == total:
            return {name: value for name, value in finished.items() if name != "step"}
        if learner.step == 0:  # the policy it starts from (pi_ref for fine-tuning) begins the record
            start = {}
            if evaluate is not None and loop.evaluation.every:
                with clock.paused():
                    start = logger.log("eval", 0, {**evaluate(loop.evaluation.interim_episodes), "seconds": 0.0})
            if loop.evaluation.snapshots:
                save_snapshot(run_dir, learner, start)
        progress = tqdm(
            total=total, initial=learner.step, desc=label, disable=not (loop.progress and main), dynamic_ncols=True
        )
        with progress as bar:
            while learner.step < total:
                metrics = learner.train_step(source.sample())
                step = learner.step
                if step % loop.log_every == 0 or step == total:
                    stop_if_nonfinite(learner, label, checkpoint_path, saved_step)
                    if learner.data_parallel:  # the global batch's (pi_ref's learner, on rank 0 alone, is not)
                        metrics = distributed.metrics_over_ranks(metrics)
                    row = logger.log("train", step, {**metrics, **source.metrics(), "seconds": clock.seconds()})
                    bar.set_postfix(loss=f"{row['loss']:.4g}")
                if (
                    evaluate is not None
                    and loop.evaluation.every
                    and step % loop.evaluation.every == 0
                    and step < total
                ):
                    with clock.paused():
                        evaluation = evaluate(loop.evaluation.interim_episodes)
                    result = logger.log("eval", step, {**evaluation, "seconds": clock.seconds()})
                    if loop.evaluation.snapshots:
                        save_snapshot(run_dir, learner, result)
                # In one process the request is read every step; ranks agree on it where they meet to log anyway
                # (a collective, a host sync), so that a CUDA step gains neither
                stop = (not learner.data_parallel or step % loop.log_every == 0) and stopping.requested_on_any_rank(
                    learner.device, learner.data_parallel
                )
                if step % loop.checkpoint_every == 0 or step == total or stop:
                    stop_if_nonfinite(learner, label, checkpoint_path, saved_step)
                    save_checkpoint(checkpoint_path, state, learner, source, clock.seconds())
                    saved_step = step
                if stop:
                    raise RunStopped(
                        f"{label} stopped at step {step} of {total} on SIGTERM; {checkpoint_path} holds that step:"
                        " run the same command to go on."
                    )
                bar.update()
        if stopping.requested_on_any_rank(learner.device, learner.data_parallel):  # every rank asks: a collective
            raise RunStopped(
                f"{label} stopped on SIGTERM after its last step, before its final evaluation; run the same"
                " command to evaluate it."
            )
        if evaluate is None:
            return {}
        return logger.log("eval", learner.step, {**evaluate(loop.evaluation.episodes), "seconds": clock.seconds()})


def save_checkpoint(path: Path, state: dict, learner: Learner, source: BatchSource, seconds: float) -> None:
    """`state` (the run's config and label) with the learner's, the source's and the RNGs' states, as `path`;
    every rank calls it. The ranks hold the same policy and optimiser (sharded: gathered here, by every rank),
    and each one's own batches where they are its own."""
    own = {"source": source.state_dict(), "rng": checkpoint.rng_state()}
    learner_state = learner.state_dict() if distributed.is_main() or learner.sharded else None  # sharded: collective
    ranks = distributed.gather_on_main(own) if distributed.active() and source.per_rank else None
    if distributed.is_main():
        state.update(learner=learner_state, seconds=seconds)
        state.update({"ranks": ranks} if ranks else own)
        checkpoint.save_atomic(state, path)


def stop_if_nonfinite(learner: Learner, label: str, checkpoint_path: Path, saved_step: int) -> None:
    """With learner.nonfinite=stop, end the run at the first non-finite loss or gradient (never applied)."""
    if learner.config.nonfinite != "stop" or (step := learner.first_nonfinite_step()) is None:
        return
    kept = (
        f"{checkpoint_path} keeps step {saved_step}, the last good one" if saved_step else "no checkpoint was written"
    )
    raise RLSFTError(
        f"Step {step} of {label} gave a non-finite loss or gradient, so the run stopped ({kept}); look for extreme"
        " values in the data, lower learner.lr, or set learner.nonfinite=skip to leave such steps out."
    )


def save_snapshot(run_dir: Path, learner: Learner, evaluation: dict[str, float]) -> None:
    """The policy at this step, a record of its progress (`rlsft data policies` reads them); rank 0 writes it."""
    snapshot = {"policy": learner.policy_state_dict(), "step": learner.step, "eval": evaluation}
    if distributed.is_main():
        checkpoint.save_atomic(snapshot, run_dir / "snapshots" / f"step{learner.step:09d}.pt")


def flat_settings(node: object, key: str = "") -> dict[str, object]:
    """A config's leaves (of its plain containers) by dotted key; a list is one leaf."""
    if not isinstance(node, dict):
        return {key: node}
    return {
        found: value
        for name, child in node.items()
        for found, value in flat_settings(child, f"{key}.{name}" if key else str(name)).items()
    }


def changed_settings(before: str, now: str) -> list[str]:
    """`key: <before> there, <now> here` for each setting two configs' YAML both hold and differ in, save
    RESUMABLE_CHANGES (a key only one holds is an option another rlsft version added or removed, one of
    ADDED_SETTINGS held at the value runs made before it had)."""
    flat_before, flat_now = (flat_settings(yaml.safe_load(text)) for text in (before, now))
    flat_before = {**ADDED_SETTINGS, **flat_before}
    return [
        f"{key}: {flat_before[key]} there, {flat_now[key]} here"
        for key in sorted(flat_before.keys() & flat_now.keys())
        if flat_before[key] != flat_now[key]
        and not any(key == allowed or key.startswith(f"{allowed}.") for allowed in RESUMABLE_CHANGES)
    ]


def resume_from(path: Path, learner: Learner, source: BatchSource, label: str, resume: bool, config_text: str) -> float:
    """Restore learner, source and RNG states from the checkpoint of the same run; never overwrite another,
    nor go on with other settings (save RESUMABLE_CHANGES).

    Returns the training seconds the run had spent before."""
    if not resume:
        raise RLSFTError(f"{path} already exists and resume=false; pass another run_dir= or delete that run.")
    state = checkpoint.load(path, map_location=learner.device)
    if state.get("label") != label:
        raise RLSFTError(
            f"{path} belongs to another run ({state.get('label')!r}, not {label!r}); pass another run_dir= to keep"
            " both."
        )
    if changed := changed_settings(state["config"], config_text):
        shown = "; ".join(changed[:3]) + (f"; and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise RLSFTError(
            f"{path} was trained with other settings ({shown}); resume it with the settings in its folder's"
            " config.yaml, or pass another run_dir= to start afresh."
        )
    own = state
    if "ranks" in state or (distributed.active() and source.per_rank):  # each rank its own batches: its own state
        ranks = state.get("ranks", [state])
        if len(ranks) != distributed.world_size():
            raise RLSFTError(
                f"{path} was written by {len(ranks)} process(es), each drawing its own batches, and this run has"
                f" {distributed.world_size()}; resume it with as many (torchrun --nproc-per-node {len(ranks)}), or"
                " pass another run_dir= to start afresh."
            )
        own = ranks[distributed.rank()]
    try:
        learner.load_state_dict(state["learner"])
        source.load_state_dict(own["source"])
        checkpoint.set_rng_state(own["rng"])
    except (KeyError, RuntimeError, ValueError) as error:  # another rlsft version, or a changed model or optimiser
        raise RLSFTError(
            f"{path} does not fit this run ({type(error).__name__}: {reason(error)}); it was written by another rlsft"
            " version or with other model settings: pass another run_dir= to start afresh."
        ) from error
    return float(state.get("seconds", 0.0))
