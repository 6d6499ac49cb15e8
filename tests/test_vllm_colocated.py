"""The vLLM backend's own logic, on CPU: its memory check, its weight sync after optimiser steps, and
the policy's recomputed log-probs. The engine is an object with vLLM's method names (vLLM needs a GPU
and is not installed here) that samples greedily with its own copy of the weights, so a stale copy shows."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
import torch

from rlsft.envs.generation.vllm_backend import VLLMGenerator, check_memory
from rlsft.errors import RLSFTError
from rlsft.policies.causal_lm import CausalLMPolicy, encode_prompts
from rlsft.pretrained.tiny_lm import SHIPPED

GIB = 2**30


@dataclass
class SamplingParams:  # vllm.SamplingParams' fields that the backend sets
    temperature: float
    max_tokens: int
    logprobs: int
    stop_token_ids: list[int]


@dataclass
class TokensPrompt:  # vllm.inputs.TokensPrompt
    prompt_token_ids: list[int]


@dataclass
class EngineModel:
    """The engine's model: load_weights as vLLM's models have it, over its own copy of the network."""

    network: torch.nn.Module
    loads: list[int] = field(default_factory=list)

    def load_weights(self, weights) -> None:
        self.network.load_state_dict(dict(weights))
        self.loads.append(1)


class LLM:
    """vllm.LLM's generate and llm_engine.model_executor.driver_worker.worker.model_runner.model."""

    def __init__(self, network: torch.nn.Module, eos_id: int) -> None:
        self.model = EngineModel(copy.deepcopy(network))
        self.llm_engine = SimpleNamespace(
            model_executor=SimpleNamespace(driver_worker=SimpleNamespace(worker=SimpleNamespace(
                model_runner=SimpleNamespace(model=self.model)))))  # fmt: skip
        self.eos_id = eos_id

    @torch.no_grad()
    def generate(self, prompts: list[TokensPrompt], parameters: SamplingParams, use_tqdm: bool) -> list:
        outputs = []
        for prompt in prompts:
            tokens = torch.tensor([prompt.prompt_token_ids])
            sequence = self.model.network.generate(tokens, max_new_tokens=parameters.max_tokens, do_sample=False,
                                                   eos_token_id=self.eos_id, pad_token_id=self.eos_id)  # fmt: skip
            response = sequence[0, tokens.shape[1] :].tolist()
            if self.eos_id in response:
                response = response[: response.index(self.eos_id) + 1]
            logprobs = [{token: SimpleNamespace(logprob=-0.5)} for token in response]  # not the trainer's numbers
            outputs.append(SimpleNamespace(outputs=[SimpleNamespace(token_ids=response, logprobs=logprobs)]))
        return outputs


def generator() -> tuple[VLLMGenerator, LLM]:
    policy = CausalLMPolicy.from_config(str(SHIPPED))
    engine = LLM(policy.model, policy.tokenizer.eos_token_id)
    return VLLMGenerator(policy, engine, SamplingParams, TokensPrompt), engine


def test_the_engine_must_fit_in_the_free_memory_beside_the_training_model() -> None:
    check_memory(0.3, free_bytes=50 * GIB, total_bytes=139 * GIB)  # 41.7 GiB of 50 free: fits
    with pytest.raises(RLSFTError, match=r"would take 41.7 GiB .* 30.0 GiB are free .* at most 0.22"):
        check_memory(0.3, free_bytes=30 * GIB, total_bytes=139 * GIB)
    with pytest.raises(RLSFTError, match=r"gpu_memory_utilization=1.5 must lie in \(0, 1\)"):
        check_memory(1.5, free_bytes=139 * GIB, total_bytes=139 * GIB)


def test_weights_reach_the_engine_after_each_optimiser_step_and_only_then() -> None:
    sampler, engine = generator()
    prompts = encode_prompts(sampler.policy.tokenizer, ["What is 12 + 34?", "What is 5 + 70?"])
    first = sampler.generate(prompts, 8)
    sampler.generate(prompts, 8)
    assert len(engine.model.loads) == 1  # loaded before the first call; the weights did not change since
    optimizer = torch.optim.SGD(sampler.policy.parameters(), lr=1.0)
    (-sampler.policy.log_prob(first).sum()).backward()
    optimizer.step()  # a large step: the greedy completions change with the weights
    after = sampler.generate(prompts, 8)
    assert len(engine.model.loads) == 2
    for name, weights in sampler.policy.model.state_dict().items():
        assert torch.equal(engine.model.network.state_dict()[name], weights), name
    with torch.no_grad():  # the batch's log-probs are the policy's own, not the engine's -0.5s
        torch.testing.assert_close(after["sample_log_prob"], sampler.policy.log_prob(after))
    assert not torch.allclose(
        after["sample_log_prob"][after["mask"]], torch.full_like(after["sample_log_prob"][after["mask"]], -0.5)
    )


def test_a_tempered_sampler_is_refused_with_one_sentence() -> None:
    sampler, _ = generator()
    with pytest.raises(RLSFTError, match="samples at temperature 1 \\(or greedily\\), not 0.7"):
        sampler.generate([[1, 2]], 4, temperature=0.7)
