"""Text throughput: rlsft against TRL on the same tiny model and data, SFT tokens/s and GRPO completions/s.

Needs TRL, which is not a dependency of rlsft: `pip install trl==1.16.0` (it pulls `datasets`).

Every variant trains a fresh copy of the shipped 0.14M-parameter character-level Llama
(rlsft.pretrained.tiny_lm.SHIPPED) on the 2000 training prompts of arithmetic (2 digits, +):

  SFT   one AdamW step (lr 1e-4) on --sft-batch-size pairs, completion " #### <answer>" + EOS,
        token-mean loss on the completion tokens only
        rlsft: text_batch(...) of pre-encoded examples -> Learner(policy, SFT(token_mean)).train_step
        trl:   SFTTrainer, SFTConfig's defaults, on a datasets.Dataset of {"prompt", "completion"}
  GRPO  8 prompts x 8 sampled completions (at most 24 tokens, temperature 1) scored by rlsft's
        exact_numeric verifier, then one AdamW step (lr 1e-5, no KL term) on all 64
        rlsft: TextRolloutSource(TextSampler(transformers generator)).sample() -> Learner(GRPO()).train_step
        trl:   GRPOTrainer, GRPOConfig's defaults (transformers generate, loss "dapo"), the same
               verifier as reward function, the gold answer an extra dataset column
  trl_fp32 is trl with bf16=False, gradient_checkpointing=False: rlsft's precision and memory
  settings on CPU (TRL defaults to bf16 autocast and gradient checkpointing, on CPU too);
  reported only, to show how much of the gap those two defaults make.

TRL gets only what makes it comparable and offline: per_device_train_batch_size (GRPO: 64 with
num_generations=8, so one generation feeds one optimizer step), learning_rate, max_steps,
max_completion_length, temperature, beta=0, use_cpu, report_to=[], logging_strategy and
save_strategy "no" (no eval by default), disable_tqdm.

Method: one process, torch.set_num_threads(--threads) for all. Each TRL trainer runs train()
once, in a thread that a TrainerCallback pauses in on_step_end after each block of steps the
main thread asks for; the clock runs from releasing a block to its last on_step_end. A timed
TRL step is thus all of TRL's loop (data, generation, rewards, loss, clipping, optimizer,
callbacks), setup (tokenising, building the trainer) is not timed, and no two variants ever run
at once. rlsft's steps are timed alike, batches built from pre-encoded token ids. Each variant
takes --warmup untimed steps, then --rounds rounds of --sft-steps / --grpo-steps timed steps,
the order rotating each round. Rates are medians over rounds; ratios are medians of per-round
ratios, with their range. SFT tokens/s = steps/s x batch x the dataset's mean tokens per
example (both sides sample the same examples uniformly; TRL's tokens are checked to equal
rlsft's); GRPO completions/s = 64 x steps/s, beside the mean length each side generated.

Reproduce (from the repository root, venv active, TRL installed as above):

    python benchmarks/text_throughput.py               # defaults: about 4 minutes on 2 loaded CPU cores

The results table goes to --out (benchmarks/results/text_throughput.md) and to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import random
import shlex
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import accelerate
import datasets
import torch
import transformers
import trl
from transformers import AutoModelForCausalLM, PreTrainedTokenizerBase, Trainer, TrainerCallback

from rlsft.algorithms import make_algorithm
from rlsft.envs.generation import make_generator
from rlsft.envs.text import TextExample, make_task
from rlsft.envs.text.sampling import TextSampler
from rlsft.envs.verifiers import make_verifier
from rlsft.learner import Learner, LearnerConfig
from rlsft.policies.causal_lm import CausalLMPolicy, encode_prompts, text_batch
from rlsft.pretrained.tiny_lm import SHIPPED
from rlsft.sources.text_rollouts import TextRolloutSource

TASK = {"digits": 2, "operations": ["+"], "train_size": 2000, "test_size": 200}
SEED = 0
SFT_LR, GRPO_LR = 1e-4, 1e-5
PROMPTS, SAMPLES, MAX_NEW_TOKENS = 8, 8, 24  # GRPO: 8 prompts x 8 completions a step
# SFTConfig / GRPOConfig overrides of each TRL variant
TRL_VARIANTS = {"trl": {}, "trl_fp32": {"bf16": False, "gradient_checkpointing": False}}
TARGETS = {"sft": 1.4, "grpo": 1.5}  # rlsft / trl (TRL's defaults), throughput

Run = Callable[[int], float]  # takes n optimizer steps; returns their wall-clock seconds


def timed(step: Callable[[], None]) -> Run:
    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return time.perf_counter() - start

    return run


def completion_tokens(tokenizer: PreTrainedTokenizerBase, example: TextExample) -> list[int]:
    """' #### <answer>' and EOS, as TRL tokenises the completion of a prompt/completion pair."""
    return tokenizer(" #### " + example.answer).input_ids + [tokenizer.eos_token_id]


def learner_config(steps: int, batch_size: int, lr: float) -> LearnerConfig:
    return LearnerConfig(steps=steps, batch_size=batch_size, optimizer="adamw", lr=lr, warmup_steps=0,
                         schedule="constant", device="cpu")  # fmt: skip


def rlsft_sft(examples: list[TextExample], batch_size: int, steps: int) -> Run:
    """rlsft's SFT step, as rlsft.pretrained.tiny_lm trains: pre-encoded examples, a text_batch per step."""
    policy = CausalLMPolicy.from_config(str(SHIPPED))
    tokenizer = policy.tokenizer
    prompts = encode_prompts(tokenizer, [example.prompt for example in examples])
    completions = [completion_tokens(tokenizer, example) for example in examples]
    sft = make_algorithm("sft", {"reduction": "token_mean"})
    learner = Learner(policy, sft, learner_config(steps, batch_size, SFT_LR))
    rng = random.Random(SEED)

    def step() -> None:
        chosen = rng.sample(range(len(examples)), batch_size)
        batch = text_batch([prompts[i] for i in chosen], [completions[i] for i in chosen], tokenizer.pad_token_id)
        learner.train_step(batch)

    return timed(step)


def rlsft_grpo(examples: list[TextExample], steps: int, lengths: list[float]) -> Run:
    """rlsft's text GRPO path: a round of 64 scored completions, then one gradient step on them."""
    policy = CausalLMPolicy.from_config(str(SHIPPED))
    tokenizer = policy.tokenizer
    sampler = TextSampler(make_generator("transformers", policy), tokenizer,
                          make_verifier("exact_numeric", {}), max_new_tokens=MAX_NEW_TOKENS)  # fmt: skip
    source = TextRolloutSource(sampler, examples, prompts_per_batch=PROMPTS, samples_per_prompt=SAMPLES,
                               temperature=1.0, epochs=1, minibatches=1, seed=SEED)  # fmt: skip
    learner = Learner(policy, make_algorithm("grpo", {}), learner_config(steps, PROMPTS * SAMPLES, GRPO_LR))

    def step() -> None:
        learner.train_step(source.sample())
        lengths.append(source.last_rates["completion_tokens"])  # computed by the source anyway

    return timed(step)


class SteppedTrainer(TrainerCallback):
    """Runs trainer.train() once, in a thread that pauses after every block of steps the caller asks for."""

    def __init__(self, trainer: Trainer, threads: int) -> None:
        self.resume, self.paused = threading.Semaphore(0), threading.Semaphore(0)
        self.remaining = 0
        self.error: BaseException | None = None
        trainer.add_callback(self)
        self.thread = threading.Thread(target=self.train, args=(trainer, threads), daemon=True)
        self.thread.start()

    def train(self, trainer: Trainer, threads: int) -> None:
        torch.set_num_threads(threads)
        self.resume.acquire()
        try:
            trainer.train()
        except BaseException as error:  # noqa: BLE001 (re-raised in the main thread)
            self.error = error
            self.paused.release()

    def on_step_end(self, args, state, control, **kwargs) -> None:  # TrainerCallback's signature
        self.remaining -= 1
        if self.remaining == 0:
            self.paused.release()
            self.resume.acquire()

    def __call__(self, steps: int) -> float:
        self.remaining = steps
        start = time.perf_counter()
        self.resume.release()
        self.paused.acquire()
        seconds = time.perf_counter() - start
        if self.error is not None:
            raise RuntimeError("TRL training failed") from self.error
        return seconds

    def close(self) -> None:
        """Lets train() run to its end (max_steps reached: nothing left to do) and waits for it."""
        self.remaining = -1
        self.resume.release()
        self.thread.join()


def trl_settings(out: str, batch_size: int, steps: int, lr: float) -> dict:
    """What makes TRL comparable and offline; everything else stays TRL's default."""
    return {
        "output_dir": out,
        "per_device_train_batch_size": batch_size,
        "max_steps": steps,
        "learning_rate": lr,
        "use_cpu": True,
        "report_to": [],
        "logging_strategy": "no",
        "save_strategy": "no",
        "disable_tqdm": True,
    }


def trl_sft(examples: list[TextExample], batch_size: int, steps: int, out: str, overrides: dict) -> Trainer:
    tokenizer = CausalLMPolicy.from_config(str(SHIPPED)).tokenizer
    records = [{"prompt": example.prompt, "completion": " #### " + example.answer} for example in examples]
    trainer = trl.SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(SHIPPED),
        args=trl.SFTConfig(**trl_settings(out, batch_size, steps, SFT_LR), **overrides),
        train_dataset=datasets.Dataset.from_list(records),
        processing_class=tokenizer,
    )
    expected = encode_prompts(tokenizer, [examples[0].prompt])[0] + completion_tokens(tokenizer, examples[0])
    assert trainer.train_dataset[0]["input_ids"] == expected, "TRL must train on exactly rlsft's tokens"
    return trainer


def trl_grpo(examples: list[TextExample], steps: int, out: str, overrides: dict, lengths: list[float]) -> Trainer:
    tokenizer = CausalLMPolicy.from_config(str(SHIPPED)).tokenizer
    verifier = make_verifier("exact_numeric", {})

    def exact_numeric(completions: list[str], answer: list[str], completion_ids: list[list[int]], **_) -> list[float]:
        lengths.append(statistics.fmean(len(ids) for ids in completion_ids))  # up to and including EOS, as rlsft's
        return [verdict.reward for verdict in verifier(completions, answer)]

    config = trl.GRPOConfig(**trl_settings(out, PROMPTS * SAMPLES, steps, GRPO_LR), num_generations=SAMPLES,
                            max_completion_length=MAX_NEW_TOKENS, temperature=1.0, beta=0.0, **overrides)  # fmt: skip
    assert config.generation_batch_size == PROMPTS * SAMPLES and config.steps_per_generation == 1
    return trl.GRPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(SHIPPED),
        reward_funcs=exact_numeric,
        args=config,
        train_dataset=datasets.Dataset.from_list([{"prompt": e.prompt, "answer": e.answer} for e in examples]),
        processing_class=tokenizer,
    )


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    models = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return models[0] if models else platform.processor() or "CPU"


def report(
    rates: dict[tuple[str, str], list[float]],
    lengths: dict[str, list[float]],
    tokens: tuple[float, float],
    args: argparse.Namespace,
    load: tuple[float, float],
) -> str:
    """The markdown results: environment, per-variant throughput, and rlsft / TRL against the targets."""
    versions = ", ".join(f"{m.__name__} {m.__version__}" for m in (torch, transformers, trl, datasets, accelerate))
    response, total = tokens
    machine = f"{cpu_name()}, {os.cpu_count()} cores, CPU only; torch.set_num_threads({args.threads}) for every variant"
    sft = f"batch {args.sft_batch_size}, AdamW lr {SFT_LR}, {args.sft_steps} timed steps a round"
    data = f"arithmetic, 2 digits, +, {TASK['train_size']} training prompts"
    grpo = f"{PROMPTS} prompts x {SAMPLES} completions a step, at most {MAX_NEW_TOKENS} new tokens, temperature 1"
    lines = [
        "# Text throughput: rlsft against TRL",
        "",
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {machine}; {versions}",
        f"- load average (1 min) at start / end: {load[0]:.2f} / {load[1]:.2f} (other processes share the machine)",
        f"- model: the shipped tiny character-level Llama ({SHIPPED.name}); data: {data}",
        f"- timing: {args.warmup} untimed steps per variant, then {args.rounds} interleaved rounds",
        f"- SFT: {sft}; {response:.2f} response and {total:.2f} total tokens per example (dataset mean)",
        f"- GRPO: {grpo}, AdamW lr {GRPO_LR}, {args.grpo_steps} timed steps a round",
        "- trl: TRL's default SFTConfig / GRPOConfig; trl_fp32: the same with bf16=False, gradient_checkpointing=False",
        "",
        "| SFT variant | steps/s | response tokens/s | total tokens/s | steps/s per round |",
        "|---|---:|---:|---:|---|",
    ]
    for name in ("rlsft", *TRL_VARIANTS):
        rate = rates[("sft", name)]
        examples = statistics.median(rate) * args.sft_batch_size
        per_round = ", ".join(f"{r:.3g}" for r in rate)
        lines.append(f"| {name} | {statistics.median(rate):.3g} | {examples * response:.0f} | {examples * total:.0f} "
                     f"| {per_round} |")  # fmt: skip
    lines += ["", "| GRPO variant | steps/s | completions/s | tokens per completion | completions/s per round |",
              "|---|---:|---:|---:|---|"]  # fmt: skip
    for name in ("rlsft", *TRL_VARIANTS):
        rate = rates[("grpo", name)]
        completions = [PROMPTS * SAMPLES * r for r in rate]
        per_round = ", ".join(f"{c:.3g}" for c in completions)
        lines.append(f"| {name} | {statistics.median(rate):.3g} | {statistics.median(completions):.3g} "
                     f"| {statistics.fmean(lengths[name]):.2f} | {per_round} |")  # fmt: skip
    lines += ["", "| ratio | median of rounds | range over rounds | target | met |", "|---|---:|---|---|---|"]
    for kind, unit in (("sft", "tokens/s"), ("grpo", "completions/s")):
        for baseline in TRL_VARIANTS:
            per_round = [r / t for r, t in zip(rates[(kind, "rlsft")], rates[(kind, baseline)])]
            value = statistics.median(per_round)
            goal = f">= {TARGETS[kind]}" if baseline == "trl" else ""
            met = ("met" if value >= TARGETS[kind] else "not met") if goal else ""
            label = f"{kind.upper()}: rlsft / {baseline}, {unit}"
            lines.append(f"| {label} | {value:.2f} | {min(per_round):.2f}-{max(per_round):.2f} | {goal} | {met} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sft-steps", type=int, default=100, help="timed SFT steps per variant per round")
    parser.add_argument("--grpo-steps", type=int, default=20, help="timed GRPO steps per variant per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per variant before the first round")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds; the median is reported")
    parser.add_argument("--sft-batch-size", type=int, default=8, help="prompt/completion pairs per SFT step")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads for every variant")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/text_throughput.md"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(SEED)
    warnings.filterwarnings("ignore", category=FutureWarning)  # transformers' gradient-checkpointing renames
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    load_at_start = os.getloadavg()[0]
    examples = make_task("arithmetic", TASK).examples("train")
    tokenizer = CausalLMPolicy.from_config(str(SHIPPED)).tokenizer
    response = statistics.fmean(len(completion_tokens(tokenizer, example)) for example in examples)
    total = response + statistics.fmean(len(p) for p in encode_prompts(tokenizer, [e.prompt for e in examples]))

    sft_total, grpo_total = (args.warmup + args.rounds * steps for steps in (args.sft_steps, args.grpo_steps))
    lengths: dict[str, list[float]] = {name: [] for name in ("rlsft", *TRL_VARIANTS)}
    with tempfile.TemporaryDirectory() as out:
        variants: dict[tuple[str, str], Run] = {("sft", "rlsft"): rlsft_sft(examples, args.sft_batch_size, sft_total)}
        for name, overrides in TRL_VARIANTS.items():
            trainer = trl_sft(examples, args.sft_batch_size, sft_total, out, overrides)
            variants[("sft", name)] = SteppedTrainer(trainer, args.threads)
        variants[("grpo", "rlsft")] = rlsft_grpo(examples, grpo_total, lengths["rlsft"])
        for name, overrides in TRL_VARIANTS.items():
            trainer = trl_grpo(examples, grpo_total, out, overrides, lengths[name])
            variants[("grpo", name)] = SteppedTrainer(trainer, args.threads)
        for run in variants.values():
            run(args.warmup)
        for side in lengths.values():
            side.clear()  # the tokens-per-completion column counts the timed steps only
        keys = list(variants)
        rates: dict[tuple[str, str], list[float]] = {key: [] for key in keys}
        for round_index in range(args.rounds):
            shift = round_index % len(keys)
            for key in keys[shift:] + keys[:shift]:
                steps = args.sft_steps if key[0] == "sft" else args.grpo_steps
                rates[key].append(steps / variants[key](steps))
                progress = f"round {round_index + 1}/{args.rounds} {key[0]} {key[1]}"
                print(f"{progress}: {rates[key][-1]:.3g} steps/s", flush=True)
        for run in variants.values():
            if isinstance(run, SteppedTrainer):
                run.close()

    table = report(rates, lengths, (response, total), args, (load_at_start, os.getloadavg()[0]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
