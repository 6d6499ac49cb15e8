"""Text datasets: the start model's scored completions (cached), or a curated completion file.

Both give the scored text batch of envs/text/sampling.py, so curation filters either on
`return` (the verifier's reward) the way it filters episodes on their return.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tensordict import TensorDict

from rlsft.cache_key import cache_key
from rlsft.envs.text import TextExample
from rlsft.envs.text.jsonl import read_records
from rlsft.envs.text.sampling import TextSampler
from rlsft.errors import RLSFTError, reason
from rlsft.policies.causal_lm import encode_prompts, text_batch

if TYPE_CHECKING:  # the tokenizer's type alone: transformers loads when a model does
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Sampling:
    """Rejection sampling's settings (`sampling.*`, configs/domain/text.yaml): K completions a prompt."""

    samples_per_prompt: int
    temperature: float
    seed: int  # its own: runs of every training seed share these data

    def __post_init__(self) -> None:
        if self.samples_per_prompt < 1 or not self.temperature >= 0 or not 0 <= self.seed < 2**32:  # NaN too
            raise RLSFTError(
                f"sampling.samples_per_prompt={self.samples_per_prompt} must be positive, sampling.temperature="
                f"{self.temperature} not negative (0: greedy) and sampling.seed={self.seed} in [0, 2**32); fix the"
                " override."
            )


def model_fingerprint(model: str) -> list:
    """The model's name and, for a local folder, its files' sizes and times: retraining it changes the data."""
    folder = Path(model).expanduser()
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    return [model, [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in files]]


def sampled_completions(
    sampler: TextSampler,
    examples: Sequence[TextExample],
    sampling: Sampling,
    recipe: dict,
    folder: Path,
    name: str,
    device: torch.device,
) -> TensorDict:
    """`sampling.samples_per_prompt` scored completions of each example from the start model.

    Made once per `recipe` (what decides the completions: model, task, verifier, sampling settings)
    and per set of examples (their prompts and answers: a task file whose answers were fixed is sampled
    again), kept as `folder`/<name>-<key of both>, like the control datasets; the sampling seed is its own.
    Runs that sample the same completions at once each write their own folder; the first renamed serves all.
    """
    recipe = {**recipe, "examples": examples_fingerprint(examples)}
    key = cache_key([json.dumps(recipe, sort_keys=True)], digest_size=6, algorithm="sha256")
    path = folder / f"{name}-{key}"
    if not path.exists():
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(sampling.seed)
            completions = sampler.sample(examples, sampling.samples_per_prompt, sampling.temperature)
        partial = path.with_name(f"{path.name}.partial-{uuid.uuid4().hex}")  # its own: parallel runs write here too
        try:
            completions.cpu().memmap(partial)
            (partial / "recipe.json").write_text(json.dumps(recipe, indent=2))
            partial.rename(path)  # atomic: an interrupted run leaves no half-written dataset
        except OSError:
            if not path.exists():
                raise  # else a run sampling the same completions finished first: its copy serves
        finally:
            shutil.rmtree(partial, ignore_errors=True)  # nothing left once renamed
    return load_cached(path)


def examples_fingerprint(examples: Sequence[TextExample]) -> str:
    """A digest of the examples' prompts and answers, in order."""
    return cache_key((json.dumps([e.prompt, e.answer]) for e in examples), digest_size=16, algorithm="sha256")


def load_cached(path: Path) -> TensorDict:
    """Completions cached by `sampled_completions`: tensors only (a pickled field, which could run
    code when loaded, is refused like any unreadable cache)."""
    try:
        return TensorDict.load_memmap(path, allow_pickle=False).clone()
    except Exception as error:  # tensordict raises RuntimeError, KeyError, JSON errors ... for a damaged folder
        raise RLSFTError(
            f"The cached completions at {path} cannot be read ({reason(error)}); delete that folder, and the next"
            " run samples them again."
        ) from error


def curated_completions(
    path: str, prompt: str, completion: str | Sequence[str], tokenizer: PreTrainedTokenizerBase
) -> TensorDict:
    """A curated prompt/completion file (JSONL, parquet or save_to_disk folder; the s1K layout by default).

    `prompt` names the prompt's field; the completion is the `completion` fields (one name, or a list)
    joined by newlines, ended by EOS.
    """
    parts = [completion] if isinstance(completion, str) else list(completion)
    fix = "fix that record, or set data_format.prompt and data_format.completion to the file's field names"
    records = read_records(Path(path).expanduser(), [prompt, *parts], fix)
    prompts = encode_prompts(tokenizer, [str(record[prompt]) for record in records])
    completions = [
        tokenizer("\n".join(str(record[key]) for key in parts), add_special_tokens=False).input_ids
        + [tokenizer.eos_token_id]
        for record in records
    ]
    batch = text_batch(prompts, completions, tokenizer.pad_token_id)
    count = len(records)
    batch["reward"], batch["return"] = torch.ones(count), torch.ones(count)  # curated: every completion passed
    batch["success"], batch["format_ok"] = torch.ones(count, dtype=torch.bool), torch.ones(count, dtype=torch.bool)
    batch["parse_error"] = torch.zeros(count, dtype=torch.bool)
    batch["group"], batch["episode"] = torch.arange(count), torch.arange(count)
    return batch
