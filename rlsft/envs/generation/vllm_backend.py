"""vLLM generation (GPU, `pip install rlsft[vllm]`), colocated with training: the Generator interface.

One engine runs in this process on the training GPU (TRL's "colocate" mode) and keeps its own
copy of the weights. Before it is built, the share of the GPU it would take
(`generation.options.gpu_memory_utilization` of the device's memory) is checked against the
memory free beside the training model. Whenever the policy's weights changed since the engine
last got them (an optimiser round), they are loaded into it before sampling, so completions
always come from the current policy. vLLM's log-probs come from other kernels than the
trainer's, so each batch's `sample_log_prob` is recomputed by the policy itself: losses compare
the policy with exactly what the trainer computes. The batch layout is TransformersGenerator's.

vLLM needs a GPU and pins its own torch: this module imports it only when an engine is built
(the module itself loads without it). Its logic (memory check, weight sync, log-prob
recomputation) is tested against an engine object with vLLM's method names; on hardware this
backend is untested so far.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import torch
from tensordict import TensorDict

from rlsft.envs.generation.base import Generator
from rlsft.errors import RLSFTError
from rlsft.policies import frozen_log_prob
from rlsft.policies.causal_lm import CausalLMPolicy, text_batch

GIB = 2**30


def import_vllm() -> ModuleType:
    """vllm, imported only when an engine is built (it needs a GPU and pins its own torch)."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # the engine core in this process
    try:
        import vllm
        import vllm.inputs
    except ImportError as error:  # pragma: no cover - depends on the machine
        raise RLSFTError(
            f"generation.backend=vllm needs vLLM ({error}); install it on a GPU machine with `pip install rlsft[vllm]`,"
            " or use generation.backend=transformers."
        ) from error
    return vllm


def check_memory(gpu_memory_utilization: float, free_bytes: int, total_bytes: int) -> None:
    """vLLM takes `gpu_memory_utilization` of the device's whole memory; that must fit in what is free now."""
    if not 0 < gpu_memory_utilization < 1:
        raise RLSFTError(
            f"generation.options.gpu_memory_utilization={gpu_memory_utilization} must lie in (0, 1); fix the override."
        )
    wanted = gpu_memory_utilization * total_bytes
    if wanted > free_bytes:
        raise RLSFTError(
            f"The vLLM engine would take {wanted / GIB:.1f} GiB (gpu_memory_utilization={gpu_memory_utilization} of"
            f" {total_bytes / GIB:.1f} GiB) but {free_bytes / GIB:.1f} GiB are free beside the training model; set"
            f" generation.options.gpu_memory_utilization to at most {free_bytes / total_bytes:.2f}, or train a"
            " smaller model."
        )


def weights_version(model: torch.nn.Module) -> int:
    """Changes whenever any parameter is written in place (as an optimiser step writes them)."""
    return sum(parameter._version for parameter in model.parameters())


class VLLMGenerator(Generator):
    name = "vllm"

    def __init__(self, policy: CausalLMPolicy, llm: Any, sampling_params: type, tokens_prompt: type) -> None:
        """Over an engine `llm` (vllm.LLM) and vLLM's SamplingParams and TokensPrompt classes."""
        self.policy, self.llm = policy, llm
        self.sampling_params, self.tokens_prompt = sampling_params, tokens_prompt
        self.loaded_version: int | None = None  # the weights the engine holds

    @classmethod
    def from_config(cls, policy: CausalLMPolicy, gpu_memory_utilization: float = 0.3) -> VLLMGenerator:
        vllm = import_vllm()
        device = next(policy.parameters()).device
        if device.type != "cuda":
            raise RLSFTError("generation.backend=vllm samples on the training GPU; train on CUDA (learner.device).")
        check_memory(gpu_memory_utilization, *torch.cuda.mem_get_info(device))
        model = policy.model
        llm = vllm.LLM(
            model=model.config.name_or_path,
            dtype=str(next(model.parameters()).dtype).removeprefix("torch."),
            gpu_memory_utilization=gpu_memory_utilization,
            enable_prefix_caching=True,  # K samples of one prompt share its prefix
        )
        return cls(policy, llm, vllm.SamplingParams, vllm.inputs.TokensPrompt)

    def sync_weights(self) -> None:
        """Load the policy's weights into the engine if they changed since it last got them."""
        version = weights_version(self.policy.model)
        if version != self.loaded_version:
            engine_model = self.llm.llm_engine.model_executor.driver_worker.worker.model_runner.model
            engine_model.load_weights(self.policy.model.state_dict().items())
            self.loaded_version = version

    @torch.no_grad()
    def generate(self, prompts: Sequence[Sequence[int]], max_new_tokens: int, temperature: float = 1.0) -> TensorDict:
        if temperature not in (0, 1):  # the recomputed log-probs are the policy's own, untempered
            raise RLSFTError(
                f"generation.backend=vllm samples at temperature 1 (or greedily), not {temperature}; set the sampling"
                " temperature to 1."
            )
        self.sync_weights()
        tokenizer = self.policy.tokenizer
        parameters = self.sampling_params(
            temperature=temperature, max_tokens=max_new_tokens, logprobs=0, stop_token_ids=[tokenizer.eos_token_id]
        )
        outputs = self.llm.generate(
            [self.tokens_prompt(prompt_token_ids=list(prompt)) for prompt in prompts], parameters, use_tqdm=False
        )
        responses = [list(output.outputs[0].token_ids) for output in outputs]
        batch = text_batch(prompts, responses, tokenizer.pad_token_id).to(next(self.policy.parameters()).device)
        # The trainer's own log-prob of each sampled token (vLLM's come from other kernels), without dropout.
        training = self.policy.training
        self.policy.eval()
        try:
            batch["sample_log_prob"] = frozen_log_prob(self.policy, batch).to(batch.device)
        finally:
            self.policy.train(training)
        return batch
