"""Generation with transformers' `model.generate` (CPU or GPU): the default backend."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tensordict import TensorDict
from torch import nn
from torch.distributed.fsdp import FSDPModule

from rlsft.envs.generation.base import Generator
from rlsft.policies.causal_lm import CausalLMPolicy, pad, position_ids


class TransformersGenerator(Generator):
    """Batched, KV-cached sampling with `model.generate` (CPU or GPU); temperature only."""

    name = "transformers"

    def __init__(self, model: nn.Module, pad_id: int, eos_id: int) -> None:
        self.model, self.pad_id, self.eos_id = model, pad_id, eos_id

    @classmethod
    def from_config(cls, policy: CausalLMPolicy) -> TransformersGenerator:
        return cls(policy.model, policy.tokenizer.pad_token_id, policy.tokenizer.eos_token_id)

    @torch.no_grad()
    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, temperature: float = 1.0) -> TensorDict:
        training = self.model.training
        self.model.eval()  # no dropout while sampling; the learner's mode is restored after
        try:
            return self.sample(prompts, max_new_tokens, temperature)
        finally:
            self.model.train(training)

    def sample(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, temperature: float) -> TensorDict:
        device = next(self.model.parameters()).device
        prompt_tokens, prompt_attention = (x.to(device) for x in pad(prompts, self.pad_id))
        greedy = temperature == 0
        output = self.model.generate(
            input_ids=prompt_tokens,
            attention_mask=prompt_attention,
            position_ids=position_ids(prompt_attention),
            max_new_tokens=max_new_tokens,
            do_sample=not greedy,
            temperature=None if greedy else temperature,
            top_k=None,
            top_p=None,
            output_logits=True,
            return_dict_in_generate=True,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_id,
            # A model sharded over ranks (FSDP2) gathers each layer from all of them at every token: every rank
            # then steps until the last one is done, as transformers does for ZeRO-3.
            synced_gpus=isinstance(self.model, FSDPModule),
        )
        response = output.sequences[:, prompt_tokens.shape[1] :]
        logits = torch.stack(output.logits, 1).float()
        if not greedy:
            logits = logits / temperature
        response_log_prob = logits.log_softmax(-1).gather(-1, response.unsqueeze(-1)).squeeze(-1)
        ended = (response == self.eos_id).long().cumsum(-1)
        response_mask = (ended - (response == self.eos_id).long()) == 0  # up to and including EOS
        mask = torch.cat([torch.zeros_like(prompt_attention, dtype=torch.bool), response_mask], 1)
        return TensorDict(
            {
                "tokens": torch.cat([prompt_tokens, response.masked_fill(~response_mask, self.pad_id)], 1),
                "attention_mask": torch.cat([prompt_attention, response_mask.long()], 1),
                "mask": mask,
                "sample_log_prob": torch.cat([torch.zeros_like(prompt_tokens, dtype=torch.float), response_log_prob], 1)
                * mask,
            },
            batch_size=[len(prompts)],
        )
