"""The text policy: any causal LM, with log pi(token_t | tokens_<t) over the response tokens.

The batch holds `tokens` [B, L] (left-padded prompt, then the response, right-padded),
`attention_mask` [B, L] for real tokens, and `mask` [B, L] for the response tokens: the
actions of method.md §1. Positions count real tokens only, as `generate` counts them, so
the log-probs of a left-padded prompt match generation's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tensordict import TensorDict
from torch import nn
from torch.distributed.fsdp import fully_shard

from rlsft.errors import RLSFTError, reason
from rlsft.policies.base import Policy

if TYPE_CHECKING:  # the tokenizer's type alone: transformers loads when a model does (control runs never)
    from transformers import PreTrainedTokenizerBase


DTYPES = ("float32", "bfloat16", "float16")  # policy.dtype: the model's weights and compute


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def pad(sequences: Sequence[Sequence[int]], pad_id: int, side: str = "left") -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [B, W] aligned to the `side` named, and their attention mask."""
    width = max(len(s) for s in sequences)
    tokens = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        columns = slice(width - len(sequence), width) if side == "left" else slice(0, len(sequence))
        tokens[row, columns] = torch.as_tensor(sequence, dtype=torch.long)
        attention[row, columns] = 1
    return tokens, attention


def text_batch(prompts: Sequence[Sequence[int]], responses: Sequence[Sequence[int]], pad_id: int) -> TensorDict:
    """Prompts left-padded, then responses right-padded: the layout generation returns."""
    prompt_tokens, prompt_attention = pad(prompts, pad_id, "left")
    response_tokens, response_attention = pad(responses, pad_id, "right")
    return TensorDict(
        {
            "tokens": torch.cat([prompt_tokens, response_tokens], 1),
            "attention_mask": torch.cat([prompt_attention, response_attention], 1),
            "mask": torch.cat([torch.zeros_like(prompt_attention), response_attention], 1).bool(),
        },
        batch_size=[len(prompts)],
    )


def encode_prompts(tokenizer: PreTrainedTokenizerBase, prompts: Sequence[str]) -> list[list[int]]:
    """Token ids of each prompt, wrapped in the tokenizer's chat template when it has one."""
    if tokenizer.chat_template:
        prompts = [
            tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
            for p in prompts
        ]
    return [tokenizer(p, add_special_tokens=not tokenizer.chat_template).input_ids for p in prompts]


def decode_responses(tokenizer: PreTrainedTokenizerBase, batch: TensorDict) -> list[str]:
    """The text of each row's response tokens, without special tokens."""
    return [
        tokenizer.decode(tokens[mask], skip_special_tokens=True)
        for tokens, mask in zip(batch["tokens"].cpu(), batch["mask"].cpu(), strict=True)
    ]


class CausalLMPolicy(Policy):
    """A causal LM as a policy over text batches; it keeps the tokenizer its samplers encode and decode with."""

    name = "causal_lm"
    in_keys = ("tokens", "attention_mask", "mask")
    config_only = ("finetune_lr",)  # the LLM learner's rate (configs/learner/llm.yaml)

    def __init__(self, model: nn.Module, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__()
        self.model, self.tokenizer = model, tokenizer

    @classmethod
    def from_config(cls, model: str, gguf_file: str | None = None, dtype: str = "float32") -> CausalLMPolicy:
        """A causal LM and its tokenizer from a local folder or hub id (a GGUF file is de-quantised)."""
        if dtype not in DTYPES:
            raise RLSFTError(f"policy.dtype={dtype!r} is not one of {', '.join(DTYPES)}; choose one of those.")
        source = str(Path(model).expanduser()) if Path(model).expanduser().exists() else model
        from transformers import AutoModelForCausalLM, AutoTokenizer  # here: a control run never pays its import
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar per load would interleave with the training bar
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
            network = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype=getattr(torch, dtype))
        except (OSError, ValueError) as error:
            raise RLSFTError(
                f"Cannot load the causal LM {model!r} ({reason(error)}); set policy.model to a local model folder"
                " (or a hub id on a machine with hub access)."
            ) from error
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return cls(network, tokenizer)

    def export(self, folder: Path) -> dict[str, str]:
        """A transformers model folder (safetensors weights, config, generation config, tokenizer), which
        `AutoModelForCausalLM.from_pretrained(folder)` loads as any other."""
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        return {"model": str(folder), "load": f"AutoModelForCausalLM.from_pretrained({str(folder)!r})"}

    def shard(self) -> None:
        """FSDP2: each decoder layer its own unit (the classes the model names in `_no_split_modules`, as
        accelerate and TRL wrap them), then the model itself for the embeddings, final norm and head. The
        model is the root: every forward, generation's included, gathers the layers' parameters in turn."""
        layers = set(getattr(self.model, "_no_split_modules", None) or ())
        for module in self.model.modules():
            if type(module).__name__ in layers:
                fully_shard(module)
        fully_shard(self.model)

    def token_log_prob(
        self, tokens: torch.Tensor, attention_mask: torch.Tensor, temperature: torch.Tensor | None = None
    ) -> torch.Tensor:
        """log p(tokens_t | tokens_<t) as [B, L], of the logits over `temperature` [B] where given (the
        distribution a sampler at that temperature draws from); position 0 has no context and gets 0."""
        output = self.model(input_ids=tokens, attention_mask=attention_mask, position_ids=position_ids(attention_mask))
        logits = output.logits[:, :-1].float()
        if temperature is not None:
            logits = logits / temperature.to(logits.device)[:, None, None]
        chosen = logits.log_softmax(-1).gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)
        return torch.nn.functional.pad(chosen, (1, 0))

    def log_prob(self, batch: TensorDict) -> torch.Tensor:
        """log pi(a_t|s_t) [B, L] on the response tokens, zero elsewhere. A batch sampled at a temperature
        (GRPO's rollouts) carries it, and is scored under the policy at that temperature, as TRL's GRPO does:
        the policy the sampler drew from, whose log-probs `sample_log_prob` holds."""
        temperature = batch.get("temperature", None)
        return self.token_log_prob(batch["tokens"], batch["attention_mask"], temperature) * batch["mask"]
