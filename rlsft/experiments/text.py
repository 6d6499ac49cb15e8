"""Text experiments: a causal LM, completions scored by a verifier, greedy held-out accuracy.

The SFT family trains on curated completions: the start model's own samples that pass the
verifier (rejection sampling, `data=sampled`), or a curated prompt/completion file. GRPO
trains on fresh groups of completions. pi_ref is the frozen start model (method.md §4).
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from torch import nn

from rlsft import distributed
from rlsft.algorithms import Algorithm
from rlsft.data import curate
from rlsft.data.text import Sampling, curated_completions, model_fingerprint, sampled_completions
from rlsft.envs.generation import make_generator
from rlsft.envs.text import TextExample, TextTask, make_task
from rlsft.envs.text.sampling import TextSampler, completion_rates
from rlsft.envs.verifiers import Verifier, make_verifier
from rlsft.errors import RLSFTError
from rlsft.experiments.base import Domain, Evaluate, Experiment, curated_source, curation_setting
from rlsft.learner import LearnerConfig, resolve_device
from rlsft.options import checked_options
from rlsft.policies import frozen_log_prob, make_policy
from rlsft.policies.causal_lm import CausalLMPolicy
from rlsft.sources.text_rollouts import TextRolloutSource

# TextRolloutSource's arguments that are not options
SUPPLIED = ("sampler", "examples", "seed", "reference", "data_parallel")


def text_verifier(cfg: DictConfig) -> Verifier:
    """The verifier `verifier.*` configures."""
    return make_verifier(cfg.verifier.name, OmegaConf.to_container(cfg.verifier.options, resolve=True))


def text_sampler(cfg: DictConfig, policy: CausalLMPolicy) -> TextSampler:
    """Completions of the policy, scored by the configured verifier."""
    generator = make_generator(cfg.generation.backend, policy, OmegaConf.to_container(cfg.generation.options))
    return TextSampler(
        generator, policy.tokenizer, text_verifier(cfg), cfg.env.max_new_tokens, cfg.generation.completions_per_call
    )


def text_task(cfg: DictConfig) -> TextTask:
    return make_task(cfg.env.task.name, OmegaConf.to_container(cfg.env.task.options, resolve=True))


def checked_examples(cfg: DictConfig, verifier: Verifier, split: str) -> list[TextExample]:
    """The task's `split`, refused when empty, with one warning naming the gold answers `verifier` cannot read.

    A bad gold answer is a data problem, said once here; in training every completion of its prompt
    scores 0 with parse_error (the verifier never raises on it).
    """
    examples = text_task(cfg).examples(split)
    if not examples:
        raise RLSFTError(
            f"{cfg.env.name}'s {split} split holds no examples; change env.task.options so that it has some (for"
            f" arithmetic: more digits, or a test_fraction further from {1 if split == 'train' else 0})."
        )
    bad = [(i, problem) for i, problem in enumerate(verifier.gold_problems([e.answer for e in examples])) if problem]
    if bad:
        index, problem = bad[0]
        warnings.warn(
            f"{len(bad)} of the {len(examples)} gold answers of {cfg.env.name}'s {split} split cannot be read by the"
            f" {cfg.verifier.name} verifier, so their prompts score 0 (indices {[i for i, _ in bad[:10]]});"
            f" the first, example {index}, is {examples[index].answer[-80:]!r}: {problem}. Fix those answers,"
            " or choose a verifier that reads them.",
            RuntimeWarning,
            stacklevel=2,
        )
    return examples


def completions_recipe(cfg: DictConfig) -> dict:
    """What decides the start model's sampled completions, and so names their cache: model, task, verifier, sampling
    (`sampled_completions` adds the task's examples themselves: a file's contents are not in the config)."""
    return {
        "model": model_fingerprint(cfg.policy.model),
        "gguf_file": cfg.policy.gguf_file,
        "dtype": cfg.policy.dtype,
        **OmegaConf.to_container(cfg.env, resolve=True),
        "verifier": OmegaConf.to_container(cfg.verifier, resolve=True),
        "sampling": OmegaConf.to_container(cfg.sampling, resolve=True),
    }


def held_out_evaluation(cfg: DictConfig, sampler: TextSampler, split_over_ranks: bool = False) -> Evaluate:
    """evaluate(prompts): greedy completions of the first `prompts` held-out prompts, scored, and `episodes`, how
    many there were (fewer in a smaller split); split over the ranks for a sharded policy (learner.distributed=fsdp),
    which every rank must run."""
    held_out = checked_examples(cfg, sampler.verifier, "test")

    def evaluate(prompts: int) -> dict[str, float]:
        examples = held_out[:prompts]
        if split_over_ranks:
            rates = rates_over_ranks(sampler, examples)
        else:
            rates = completion_rates(sampler.sample(examples, 1, temperature=0.0))
        return {**rates, "episodes": len(examples)}

    return evaluate


def rates_over_ranks(sampler: TextSampler, examples: list[TextExample]) -> dict[str, float]:
    """The completion rates of `examples`' greedy completions, each rank completing every world_size-th one.
    A rank with fewer pads its share with the first example, not counted: all ranks make the same generate calls."""
    own = examples[distributed.rank() :: distributed.world_size()]
    width = -(-len(examples) // distributed.world_size())
    batch = sampler.sample(own + examples[:1] * (width - len(own)), 1, temperature=0.0)
    rates = completion_rates(batch[: max(len(own), 1)])
    sums = torch.tensor([len(own), *(rate * len(own) for rate in rates.values())], dtype=torch.float64)
    count, *totals = distributed.all_ranks_sum(sums).tolist()
    return dict(zip(rates, (total / count for total in totals), strict=True))


def text_experiment(
    cfg: DictConfig, algorithm: Algorithm, learner_config: LearnerConfig, policy: CausalLMPolicy | None = None
) -> Experiment:
    device = resolve_device(learner_config.device)
    policy = make_policy(cfg.policy).to(device) if policy is None else policy  # the start model
    sampler = text_sampler(cfg, policy)
    prompts = checked_examples(cfg, sampler.verifier, "train")
    # pi_ref: the start model, frozen before any step (a copy only when a loss reads it).
    reference = copy.deepcopy(policy).requires_grad_(False).eval() if "ref_log_prob" in algorithm.in_keys else None
    evaluate = held_out_evaluation(cfg, sampler, learner_config.sharded)
    if algorithm.source == "rollouts":
        options = checked_options(
            TextRolloutSource, OmegaConf.to_container(cfg.algorithm.rollout), "algorithm.rollout", SUPPLIED
        )
        source = TextRolloutSource(
            sampler, prompts, seed=cfg.seed, reference=reference, data_parallel=learner_config.data_parallel, **options
        )
        return Experiment(policy, source, learner_config.sized_for(0), evaluate, f"{cfg.env.name} rollouts", "accuracy")

    if cfg.data == "sampled":
        sampling = Sampling(**checked_options(Sampling, OmegaConf.to_container(cfg.sampling), "sampling"))
        cache = Path(cfg.data_dir).expanduser() / "text"
        completions = sampled_completions(
            sampler, prompts, sampling, completions_recipe(cfg), cache, cfg.env.name, device
        )
        data = f"{cfg.env.name} completions of the start model"
    else:
        fields = OmegaConf.to_container(cfg.data_format, resolve=True)
        completions = curated_completions(cfg.data, fields["prompt"], fields["completion"], policy.tokenizer)
        data = str(cfg.data)
    curation = curation_setting(cfg.algorithm.curation)
    trajectories = curate(completions, *curation)
    if reference is not None:
        trajectories["ref_log_prob"] = frozen_log_prob(reference, trajectories)
    learner_config = learner_config.sized_for(len(trajectories))
    every = cfg.algorithm.rounds.every
    if every and cfg.data != "sampled":
        raise RLSFTError(
            f"algorithm.rounds.every={every} samples the next rounds' data from the policy, and data={cfg.data}"
            " is a file; use data=sampled, or algorithm.rounds.every=0 to train on the file."
        )

    def draw() -> TensorDict:  # a round of iterated SFT: K completions of every training prompt, scored
        return sampler.sample(prompts, sampling.samples_per_prompt, sampling.temperature)

    source = curated_source(trajectories, algorithm, learner_config, device, every, draw, policy, curation)
    about = {"completions_kept": len(trajectories), "completions_total": len(completions)}
    return Experiment(policy, source, learner_config, evaluate, data, "accuracy", about)


class Text(Domain):
    """Text tasks with a verifier: curated completions for the SFT family, fresh groups for GRPO; greedy accuracy."""

    name = "text"

    def experiment(
        self, cfg: DictConfig, algorithm: Algorithm, learner_config: LearnerConfig, policy: nn.Module | None = None
    ) -> Experiment:
        return text_experiment(cfg, algorithm, learner_config, policy)

    def evaluated_policy(self, cfg: DictConfig, seed: int, metadata: dict) -> tuple[nn.Module, Evaluate]:
        policy = make_policy(cfg.policy)  # greedy decoding: the seed does not enter
        return policy, held_out_evaluation(cfg, text_sampler(cfg, policy))
