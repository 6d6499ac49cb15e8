"""Completions of text prompts, scored by a verifier: the text counterpart of env rollouts.

One sampler serves rejection sampling (K completions per prompt from the start model, the
verified ones kept: method.md §4's curated data), GRPO's rollouts (K completions per prompt
from the current policy) and evaluation (one greedy completion per held-out prompt).

A scored batch is the text batch of policies/causal_lm.py, [N] completions, plus per
completion `reward` (= `return`, what curation filters on), `success`, `format_ok`,
`parse_error`, `group` (the prompt's index: GRPO normalises within it) and `episode`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from tensordict import TensorDict

from rlsft.envs.generation import Generator
from rlsft.envs.text import TextExample
from rlsft.envs.verifiers import Verifier
from rlsft.errors import RLSFTError
from rlsft.policies.causal_lm import decode_responses, encode_prompts

if TYPE_CHECKING:  # the tokenizer's type alone: transformers loads when a model does
    from transformers import PreTrainedTokenizerBase

# What a scored batch holds (TextSampler.sample): the text batch, then the verdict of each completion.
BATCH_KEYS = ("tokens", "attention_mask", "mask", "sample_log_prob", "reward", "return", "success", "format_ok",
              "parse_error", "group", "episode")  # fmt: skip


def trim_padding(batch: TensorDict) -> TensorDict:
    """Drops the columns no row attends to, at either end."""
    used = batch["attention_mask"].bool().any(0).nonzero().squeeze(-1)
    first, last = int(used[0]), int(used[-1])
    return batch.apply(lambda x: x[:, first : last + 1], batch_size=batch.batch_size)


class TextSampler:
    """Prompts -> completions (`generator`) -> verdicts (`verifier`), in generation chunks."""

    def __init__(
        self,
        generator: Generator,
        tokenizer: PreTrainedTokenizerBase,
        verifier: Verifier,
        max_new_tokens: int,
        completions_per_call: int = 64,
    ) -> None:
        sizes = {"env.max_new_tokens": max_new_tokens, "generation.completions_per_call": completions_per_call}
        if bad := [f"{key}={size!r}" for key, size in sizes.items() if not (type(size) is int and size >= 1)]:
            raise RLSFTError(f"{' and '.join(bad)} must be a positive whole number; fix the override.")
        self.generator, self.tokenizer, self.verifier = generator, tokenizer, verifier
        self.max_new_tokens, self.completions_per_call = max_new_tokens, completions_per_call

    def sample(self, examples: Sequence[TextExample], samples_per_prompt: int, temperature: float) -> TensorDict:
        """`samples_per_prompt` scored completions of each example, grouped by example ([N * K])."""
        prompts = encode_prompts(self.tokenizer, [example.prompt for example in examples])
        rows = [index for index in range(len(examples)) for _ in range(samples_per_prompt)]
        prompt_width = max(len(prompt) for prompt in prompts)
        width = prompt_width + self.max_new_tokens
        parts = []
        for start in range(0, len(rows), self.completions_per_call):
            chunk = [prompts[index] for index in rows[start : start + self.completions_per_call]]
            part = self.generator.generate(chunk, self.max_new_tokens, temperature)
            # One width for every chunk: prompts right-aligned at prompt_width, responses after.
            left = prompt_width - max(len(prompt) for prompt in chunk)
            right = width - left - part["tokens"].shape[1]
            parts.append(
                part.apply(functools.partial(torch.nn.functional.pad, pad=(left, right)), batch_size=part.batch_size)
            )
        batch = trim_padding(torch.cat(parts))
        verdicts = self.verifier(decode_responses(self.tokenizer, batch), [examples[index].answer for index in rows])
        reward = torch.tensor([verdict.reward for verdict in verdicts], device=batch.device)
        batch["reward"], batch["return"] = reward, reward.clone()
        for key in ("success", "format_ok", "parse_error"):
            batch[key] = torch.tensor([getattr(verdict, key) for verdict in verdicts], device=batch.device)
        batch["group"] = torch.tensor(rows, device=batch.device)
        batch["episode"] = torch.arange(len(rows), device=batch.device)
        return batch


def completion_rates(batch: TensorDict) -> dict[str, float]:
    """Accuracy, mean reward, format and parse-error rates and mean length of scored completions."""
    return {
        "accuracy": batch["success"].float().mean().item(),
        "reward_mean": batch["reward"].float().mean().item(),
        "format_rate": batch["format_ok"].float().mean().item(),
        "parse_error_rate": batch["parse_error"].float().mean().item(),
        "completion_tokens": batch["mask"].sum(-1).float().mean().item(),
    }
