"""On-policy text batches for GRPO: K scored completions of each prompt from the current policy.

Each refill draws `prompts_per_batch` training prompts (a fresh shuffle each pass over the
prompts), samples `samples_per_prompt` completions of each with the policy being trained
(their `sample_log_prob` is what the sampler gave: no recomputation), scores them, and serves
`epochs` passes of `minibatches` minibatches. A minibatch holds whole groups, so the loss
normalises each completion's reward within its own prompt's group.

Under data parallel every rank draws the same prompts and samples its own equal share of them,
with its own RNG: together the ranks sample the batch one process would, each its part.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDict
from torch import nn

from rlsft import distributed
from rlsft.envs.text import TextExample
from rlsft.envs.text.sampling import BATCH_KEYS, TextSampler, completion_rates
from rlsft.errors import RLSFTError
from rlsft.policies import frozen_log_prob
from rlsft.sources.minibatches import MinibatchQueue


class TextRolloutSource:
    per_rank = True  # under data parallel each rank samples its own prompts' completions

    def __init__(
        self,
        sampler: TextSampler,
        examples: Sequence[TextExample],
        prompts_per_batch: int,
        samples_per_prompt: int,
        temperature: float,
        epochs: int,
        minibatches: int,
        seed: int,
        reference: nn.Module | None = None,
        data_parallel: bool = False,
    ) -> None:
        sizes = {"prompts_per_batch": prompts_per_batch, "samples_per_prompt": samples_per_prompt, "epochs": epochs}
        small = [
            f"algorithm.rollout.{key}={size}" for key, size in {**sizes, "minibatches": minibatches}.items() if size < 1
        ]
        if small:
            raise RLSFTError(f"{', '.join(small)} cannot be below 1; set it to 1 or more.")
        if samples_per_prompt < 2:  # GRPO's advantage is a reward minus its group's mean (TRL refuses too)
            raise RLSFTError(
                "algorithm.rollout.samples_per_prompt=1 makes each prompt a group of one, whose reward minus the"
                " group's mean is 0, so nothing would be learnt; set it to 2 or more."
            )
        if not temperature > 0:  # NaN too; greedy samples of a prompt are one completion K times: advantages 0
            raise RLSFTError(
                f"algorithm.rollout.temperature={temperature} must be positive: GRPO learns from the differences"
                " between a prompt's sampled completions, and greedy ones are all the same; set it above 0 (1: the"
                " model's own distribution)."
            )
        self.share = distributed.share(prompts_per_batch, "algorithm.rollout.prompts_per_batch", data_parallel)
        own_prompts = self.share.stop - self.share.start
        if minibatches > own_prompts:
            processes = f" over {distributed.world_size()} processes" if data_parallel else ""
            raise RLSFTError(
                f"algorithm.rollout.minibatches={minibatches} is more than the {own_prompts} prompts of each"
                f" batch{processes} (algorithm.rollout.prompts_per_batch={prompts_per_batch}), so some minibatch"
                " would hold no whole group of a prompt's completions; set minibatches to at most that."
            )
        if not examples:
            raise RLSFTError("The text task gave no training prompts; give it a non-empty train split.")
        self.sampler, self.examples, self.reference = sampler, list(examples), reference
        self.keys = (*BATCH_KEYS, "temperature", *(("ref_log_prob",) if reference is not None else ()))
        self.prompts_per_batch, self.own_prompts = prompts_per_batch, own_prompts
        self.samples_per_prompt, self.temperature = samples_per_prompt, temperature
        self.order = torch.Generator().manual_seed(seed)  # prompt order and minibatch shuffles: checkpointed
        self.pending: list[int] = []  # prompts of this pass not yet drawn
        self.queue = MinibatchQueue(epochs, minibatches, generator=self.order)
        self.completions = 0
        self.last_rates: dict[str, float] = {}

    def sample(self) -> TensorDict:
        return self.queue.next(self.refill)

    def next_prompts(self) -> list[TextExample]:
        while len(self.pending) < self.prompts_per_batch:
            self.pending += torch.randperm(len(self.examples), generator=self.order).tolist()
        drawn, self.pending = self.pending[: self.prompts_per_batch], self.pending[self.prompts_per_batch :]
        return [self.examples[index] for index in drawn]

    @torch.no_grad()
    def refill(self) -> None:
        batch = self.sampler.sample(self.next_prompts()[self.share], self.samples_per_prompt, self.temperature)
        # The loss scores the completions under the policy at the temperature they were drawn at (causal_lm.py)
        batch["temperature"] = torch.full(batch.batch_size, self.temperature, device=batch.device)
        if self.reference is not None:
            batch["ref_log_prob"] = frozen_log_prob(self.reference, batch).to(batch.device)
        self.completions += self.prompts_per_batch * self.samples_per_prompt  # all ranks' (equal shares)
        rates = completion_rates(batch)  # of all ranks' completions: the mean of their equal shares' rates
        means = distributed.average_over_ranks(torch.tensor(list(rates.values()), dtype=torch.float64))
        self.last_rates = dict(zip(rates, means.tolist(), strict=True))
        groups = batch["group"].view(self.own_prompts, self.samples_per_prompt)[:, 0]
        self.queue.fill(groups, lambda chosen: batch[torch.isin(batch["group"], chosen)])  # whole groups

    def metrics(self) -> dict[str, float]:
        """Completions so far and the rates of the latest round of completions (reward curve)."""
        return {"completions": float(self.completions), **self.last_rates}

    def state_dict(self) -> dict:
        """The prompt order, the minibatches left of the current round and the counts: an exact resume."""
        return {
            "order": self.order.get_state(),
            "pending": self.pending,
            "queue": self.queue.state_dict(),
            "completions": self.completions,
            "last_rates": self.last_rates,
        }

    def load_state_dict(self, state: dict) -> None:
        self.order.set_state(state["order"])
        self.pending, self.completions = list(state["pending"]), state["completions"]
        self.queue.load_state_dict(state["queue"])
        self.last_rates = state["last_rates"]

    def close(self) -> None:
        pass
