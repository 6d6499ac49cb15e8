"""The text policy: any causal LM, with log pi(token_t | tokens_<t) over the response tokens.

The batch holds `tokens` [B, L] (left-padded prompt, then the response, right-padded),
`attention_mask` [B, L] for real tokens, and `mask` [B, L] for the response tokens: the
actions of method.md §1. Positions count real tokens only, as `generate` counts them, so
the log-probs of a left-padded prompt match generation's.
"""

from __future__ import annotations

import torch
from tensordict import TensorDict
from torch import nn


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class CausalLMPolicy(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def token_log_prob(self, tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """log p(tokens_t | tokens_<t) as [B, L]; position 0 has no context and gets 0."""
        logits = self.model(
            input_ids=tokens, attention_mask=attention_mask, position_ids=position_ids(attention_mask)
        ).logits[:, :-1]
        chosen = logits.float().log_softmax(-1).gather(-1, tokens[:, 1:].unsqueeze(-1)).squeeze(-1)
        return torch.nn.functional.pad(chosen, (1, 0))

    def log_prob(self, batch: TensorDict) -> torch.Tensor:
        """log pi(a_t|s_t) [B, L] on the response tokens, zero elsewhere."""
        return self.token_log_prob(batch["tokens"], batch["attention_mask"]) * batch["mask"]
