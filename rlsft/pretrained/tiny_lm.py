"""A tiny character-level causal LM that rlsft pretrains itself on noisy arithmetic.

It exists so that the text side runs anywhere in seconds: a character tokenizer (the
tokenizers library), a 2-layer Llama built from a config, trained with rlsft's own learner
and SFT loss on the arithmetic task's train split where a fraction `noise` of the answers
is wrong. Training stops once greedy accuracy on the held-out split reaches
`target_accuracy`, so the model starts where rejection sampling, iw-SFT and GRPO have
room to help. Re-create the shipped model (rlsft/pretrained/tiny-arithmetic) with

    python -m rlsft.pretrained.tiny_lm
"""

from __future__ import annotations

import argparse
import json
import random
import string
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from rlsft.algorithms import make_algorithm
from rlsft.checkpoint import seed_everything
from rlsft.configs.compose import compose_config
from rlsft.envs.generation import TransformersGenerator
from rlsft.envs.text import TextExample, make_task
from rlsft.envs.text.sampling import TextSampler, completion_rates
from rlsft.experiments.text import text_verifier
from rlsft.learner import Learner, LearnerConfig
from rlsft.policies.causal_lm import CausalLMPolicy, encode_prompts, text_batch

SHIPPED = Path(__file__).parent / "tiny-arithmetic"
SPECIAL_TOKENS = ["<pad>", "<eos>", "<unk>"]
TASK = {"digits": 2, "operations": ["+"], "train_size": 100_000, "test_size": 200}  # train: every problem


def char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per printable ASCII character (and newline), plus pad, end and unknown."""
    vocabulary = {token: index for index, token in enumerate(SPECIAL_TOKENS + list(string.printable[:-5] + "\n"))}
    tokenizer = Tokenizer(models.WordLevel(vocabulary, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>")


def tiny_llama(vocab_size: int, hidden_size: int, layers: int) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=4 * hidden_size, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128, tie_word_embeddings=True,
        pad_token_id=0, eos_token_id=1, bos_token_id=None,
    )  # fmt: skip
    return LlamaForCausalLM(config)


def noisy_answer(example: TextExample, noise: float, rng: random.Random) -> str:
    """The completion the model learns: ' #### <answer>', wrong by a few units with probability `noise`."""
    answer = int(example.answer)
    if rng.random() < noise:
        answer += rng.choice([-1, 1]) * rng.randint(1, 10)
    return f" #### {answer}"


def pretrain(
    out: Path, noise: float, target_accuracy: float, max_steps: int, batch_size: int, lr: float, seed: int
) -> dict:
    """Trains until held-out greedy accuracy >= target_accuracy; saves model and tokenizer to `out`."""
    seed_everything(seed)
    tokenizer = char_tokenizer()
    policy = CausalLMPolicy(tiny_llama(len(tokenizer), hidden_size=64, layers=2), tokenizer)
    task = make_task("arithmetic", TASK)
    train, test = task.examples("train"), task.examples("test")
    learner = Learner(
        policy,
        make_algorithm("sft", {"reduction": "token_mean"}),
        LearnerConfig(steps=max_steps, batch_size=batch_size, optimizer="adamw", lr=lr, warmup_steps=100,
                      schedule="constant", device="cpu"),
    )  # fmt: skip
    cfg = compose_config("train", ["env=arithmetic"])  # held-out accuracy as `rlsft train env=arithmetic` measures it
    sampler = TextSampler(
        TransformersGenerator.from_config(policy), tokenizer, text_verifier(cfg), cfg.env.max_new_tokens
    )
    rng = random.Random(seed)
    accuracy = 0.0
    while learner.step < max_steps and accuracy < target_accuracy:
        examples = rng.sample(train, batch_size)
        completions = [tokenizer(noisy_answer(e, noise, rng)).input_ids + [tokenizer.eos_token_id] for e in examples]
        learner.train_step(text_batch(encode_prompts(tokenizer, [e.prompt for e in examples]), completions, 0))
        if learner.step % 100 == 0:
            accuracy = completion_rates(sampler.sample(test, 1, temperature=0.0))["accuracy"]
            print(f"step {learner.step}: held-out greedy accuracy {accuracy:.3f}")
    if accuracy < target_accuracy:
        raise RuntimeError(f"held-out accuracy {accuracy:.3f} < {target_accuracy} after {max_steps} steps")
    out.mkdir(parents=True, exist_ok=True)
    policy.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    record = {"steps": learner.step, "held_out_greedy_accuracy": accuracy, "noise": noise, "task": TASK,
              "seed": seed, "batch_size": batch_size, "lr": lr, "command": "python -m rlsft.pretrained.tiny_lm"}  # fmt: skip
    (out / "pretraining.json").write_text(json.dumps(record, indent=2))
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=SHIPPED)
    parser.add_argument("--noise", type=float, default=0.3, help="fraction of wrong answers in the training data")
    parser.add_argument("--target-accuracy", type=float, default=0.35)
    parser.add_argument("--max-steps", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(pretrain(args.out, args.noise, args.target_accuracy, args.max_steps, args.batch_size, args.lr, args.seed))


if __name__ == "__main__":
    main()
