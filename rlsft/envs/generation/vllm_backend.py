"""vLLM generation (GPU, `pip install rlsft[vllm]`): the Generator interface of generation.py.

The engine runs in this process beside the model being trained (TRL's "colocate" mode) and
keeps its own copy of the weights; before each generation call the trained model's weights
are loaded into it, so completions always come from the current policy. The returned batch
has the layout and the `sample_log_prob` of TransformersGenerator's.

vLLM needs a GPU and pins its own torch: this module imports it only when
`generation.backend=vllm` builds an engine (the module itself loads without it), and its test
is skipped where vLLM is absent.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import ModuleType

import torch
from tensordict import TensorDict
from torch import nn
from transformers import PreTrainedTokenizerBase

from rlsft.envs.generation.base import Generator
from rlsft.errors import RLSFTError
from rlsft.policies.causal_lm import CausalLMPolicy, text_batch


def import_vllm() -> ModuleType:
    """vllm, imported only when an engine is built (it needs a GPU and pins its own torch)."""
    # The engine core in this process, where the trained weights can be loaded into its model.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    try:
        import vllm
        import vllm.inputs
    except ImportError as error:  # pragma: no cover - depends on the machine
        raise RLSFTError(
            f"generation.backend=vllm needs vLLM ({error}); install it on a GPU machine with `pip install rlsft[vllm]`,"
            " or use generation.backend=transformers."
        ) from error
    return vllm


class VLLMGenerator(Generator):
    name = "vllm"

    def __init__(
        self, model: nn.Module, tokenizer: PreTrainedTokenizerBase, gpu_memory_utilization: float = 0.3
    ) -> None:
        self.vllm = import_vllm()
        self.model, self.tokenizer = model, tokenizer
        self.llm = self.vllm.LLM(
            model=model.config.name_or_path,
            dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
            gpu_memory_utilization=gpu_memory_utilization,
            enable_prefix_caching=True,  # K samples of one prompt share its prefix
        )

    @classmethod
    def from_config(cls, policy: CausalLMPolicy) -> VLLMGenerator:
        return cls(policy.model, policy.tokenizer)

    def load_current_weights(self) -> None:
        engine_model = self.llm.llm_engine.model_executor.driver_worker.worker.model_runner.model
        engine_model.load_weights(self.model.state_dict().items())

    @torch.no_grad()
    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, temperature: float = 1.0) -> TensorDict:
        self.load_current_weights()
        parameters = self.vllm.SamplingParams(
            temperature=temperature, max_tokens=max_new_tokens, logprobs=0, stop_token_ids=[self.tokenizer.eos_token_id]
        )
        outputs = self.llm.generate(
            [self.vllm.inputs.TokensPrompt(prompt_token_ids=list(p)) for p in prompts], parameters, use_tqdm=False
        )
        completions = [output.outputs[0] for output in outputs]
        responses = [list(completion.token_ids) for completion in completions]
        batch = text_batch(prompts, responses, self.tokenizer.pad_token_id)
        # The sampler's log-prob of each response token, placed where `mask` marks the response.
        log_probs = [
            [step[token].logprob for token, step in zip(completion.token_ids, completion.logprobs, strict=True)]
            for completion in completions
        ]
        batch["sample_log_prob"] = torch.zeros(batch["mask"].shape)
        batch["sample_log_prob"][batch["mask"]] = torch.tensor([value for row in log_probs for value in row])
        return batch.to(next(self.model.parameters()).device)
