"""Text datasets: the start model's scored completions (cached), or a curated completion file.

Both give the scored text batch of envs/text_sampling.py, so curation filters either on
`return` (the verifier's reward) the way it filters episodes on their return.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from tensordict import TensorDict
from transformers import PreTrainedTokenizerBase

from rlsft.cache_key import cache_key
from rlsft.envs.text import TextExample
from rlsft.envs.text.jsonl import read_records
from rlsft.envs.text_sampling import TextSampler
from rlsft.errors import RLSFTError, reason
from rlsft.policies.causal_lm import encode_prompts, text_batch


def model_fingerprint(model: str) -> list:
    """The model's name and, for a local folder, its files' sizes and times: retraining it changes the data."""
    folder = Path(model).expanduser()
    files = sorted(folder.iterdir()) if folder.is_dir() else []
    return [model, [(f.name, f.stat().st_size, int(f.stat().st_mtime)) for f in files]]


def sampled_completions(
    sampler: TextSampler, examples: Sequence[TextExample], cfg: DictConfig, device: torch.device
) -> TensorDict:
    """`sampling.samples_per_prompt` scored completions of each example from the start model.

    Made once per (model, task, verifier, sampling settings) and kept under
    `<data_dir>/text/`, like the control datasets; the sampling seed is its own.
    """
    recipe = {
        "model": model_fingerprint(cfg.policy.model),
        "gguf_file": cfg.policy.gguf_file,
        "dtype": cfg.policy.dtype,
        **OmegaConf.to_container(cfg.env, resolve=True),
        "verifier": OmegaConf.to_container(cfg.verifier, resolve=True),
        "sampling": OmegaConf.to_container(cfg.sampling, resolve=True),
    }
    key = cache_key([json.dumps(recipe, sort_keys=True)], digest_size=6, algorithm="sha256")
    path = Path(cfg.data_dir).expanduser() / "text" / f"{cfg.env.name}-{key}"
    if not path.exists():
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(cfg.sampling.seed)
            completions = sampler.sample(examples, cfg.sampling.samples_per_prompt, cfg.sampling.temperature)
        partial = path.with_name(path.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        completions.cpu().memmap(partial)
        (partial / "recipe.json").write_text(json.dumps(recipe, indent=2))
        partial.rename(path)  # atomic: an interrupted run leaves no half-written dataset
    return load_cached(path)


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


def curated_completions(path: str, fields: DictConfig, tokenizer: PreTrainedTokenizerBase) -> TensorDict:
    """A curated prompt/completion file (JSONL, parquet or save_to_disk folder; the s1K layout by default).

    The completion is the `fields.completion` entries (one field name, or a list) joined by newlines, ended by EOS.
    """
    parts = [fields.completion] if isinstance(fields.completion, str) else list(fields.completion)
    fix = "fix that record, or set data_format.prompt and data_format.completion to the file's field names"
    records = read_records(Path(path).expanduser(), [fields.prompt, *parts], fix)
    prompts = encode_prompts(tokenizer, [str(record[fields.prompt]) for record in records])
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
