"""SFT and RL in one step: a weighted sum of other algorithms' losses, each on its own batch.

    L(theta) = sum_k w_k L_k(theta; B_k)

Part k is any registered algorithm with its own batch source (rlsft/sources/mixed.py): GRPO on
fresh completions plus iw-SFT on curated demonstrations, as ReLIFT, LUFFY and TRAPO mix them; PPO
on rollouts plus BC on a dataset. One policy receives every part's gradient; each part keeps its
own hooks (iw-SFT's q) and module state, saved with the checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tensordict import TensorDict
from torch import nn

from rlsft.algorithms.base import Algorithm, LossOutput
from rlsft.errors import RLSFTError


class Mix(Algorithm):
    name = "mix"
    source = "parts"  # each part's own; the experiment gives one batch a step holding each part's under its name
    in_keys = ()  # each part's are checked against its own source

    def __init__(self, parts: dict[str, Algorithm], weights: Sequence[float]) -> None:
        super().__init__()
        numbers = all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in weights)  # not `abc`, not true
        if (
            len(weights) != len(parts)
            or not (numbers and all(math.isfinite(w) and w >= 0 for w in weights))
            or not any(weights)
        ):
            raise RLSFTError(
                f"algorithm.weights={list(weights)} must give each of the {len(parts)} parts {list(parts)} a finite"
                " weight >= 0, not all 0; pass one weight per part, e.g. algorithm.weights=[1.0,0.1]."
            )
        self.parts = nn.ModuleDict(parts)
        self.weights = dict(zip(parts, (float(w) for w in weights), strict=True))
        self.domains = tuple(d for d in Algorithm.domains if all(d in part.domains for part in parts.values()))

    def attach(self, policy: nn.Module) -> None:
        for part in self.parts.values():
            part.attach(policy)

    def before_step(self, policy: nn.Module, step: int) -> None:
        for part in self.parts.values():
            part.before_step(policy, step)

    def loss(self, policy: nn.Module, batch: TensorDict) -> LossOutput:
        outputs = {name: part.loss(policy, batch[name]) for name, part in self.parts.items()}
        metrics = {}
        for name, output in outputs.items():  # each part's loss and metrics under its name
            metrics[f"{name}/loss"] = output.loss.detach()
            metrics.update({f"{name}/{key}": value for key, value in output.metrics.items()})
        return LossOutput(sum(self.weights[name] * output.loss for name, output in outputs.items()), metrics)
