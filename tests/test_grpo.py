"""GRPO: group advantages by hand, and the loss on a generated text batch."""

from __future__ import annotations

import torch
from test_generation import BOS, EOS, PAD, tiny_llama

from rlsft.algorithms.grpo import GRPO, group_advantages
from rlsft.envs.generation import TransformersGenerator
from rlsft.policies.causal_lm import CausalLMPolicy
from rlsft.pretrained.tiny_lm import char_tokenizer


def test_group_advantages_match_a_hand_computation() -> None:
    reward = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    group = torch.tensor([7, 7, 7, 7, 3, 3, 5])  # groups need not be contiguous or numbered from 0
    # group 7: mean 0.5, std 0.5 -> +-1; group 3: all right -> 0; a group of one -> 0
    expected = torch.tensor([1.0, -1.0, -1.0, 1.0, 0.0, 0.0, 0.0])
    torch.testing.assert_close(group_advantages(reward, group, eps=0.0).nan_to_num(0.0), expected)
    torch.testing.assert_close(
        group_advantages(reward, group, scale=False), torch.tensor([0.5, -0.5, -0.5, 0.5, 0, 0, 0])
    )
    assert torch.isfinite(group_advantages(reward, group)).all()  # eps keeps zero-variance groups finite


def test_grpo_loss_on_sampled_text() -> None:
    model = tiny_llama()
    torch.manual_seed(3)
    batch = TransformersGenerator(model, PAD, EOS).generate([[BOS, 5]] * 4 + [[BOS, 9]] * 4, max_new_tokens=6)
    batch["reward"] = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    batch["group"] = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    batch["ref_log_prob"] = batch["sample_log_prob"]
    output = GRPO(kl_coef=0.1).loss(CausalLMPolicy(model, char_tokenizer()), batch)
    assert output.metrics["clip_fraction"] == 0 and output.metrics["log_ratio_max"] < 1e-4  # on-policy
    assert output.metrics["kl_to_ref"].abs() < 1e-6
    output.loss.backward()
    assert torch.isfinite(output.loss)
