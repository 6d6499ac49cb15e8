"""Prompt/answer records from local files: any JSONL, GSM8K's and MATH's published formats.

GSM8K (`question`, `answer` ending in `#### <number>`) and MATH (`problem`, `solution` with
a final `\\boxed{}`) are read from JSONL or parquet files, or from a directory written by
`datasets.Dataset.save_to_disk`; `{split}` in a path is replaced by the split's name (a path
without it serves one file as both splits, with a warning: held-out accuracy would be on training prompts).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

from rlsft.envs.text.base import TextExample, TextTask, check_split
from rlsft.errors import RLSFTError


def read_records(path: Path, fields: Sequence[str], fix: str) -> list[dict]:
    """The file's records, each checked to hold `fields`; the first that does not is named with `fix`."""
    if not path.exists():
        raise RLSFTError(f"{path} does not exist; give the path of a local file.")
    located = located_records(path)
    if not located:
        raise RLSFTError(f"{path} holds no records; give a file whose records have the fields {list(fields)}.")
    for where, record in located:
        missing = [field for field in fields if not isinstance(record, dict) or field not in record]
        if missing:
            raise RLSFTError(f"{path} {where} lacks the field {missing[0]!r}; {fix}.")
    return [record for _, record in located]


def located_records(path: Path) -> list[tuple[str, object]]:
    """(where, record) pairs: "line N" of a JSONL file, "record N" (from 1) of a table."""
    if path.is_dir():  # datasets.Dataset.save_to_disk: Arrow files and JSON metadata, no pickles
        try:
            import datasets
        except ImportError as error:
            raise RLSFTError(
                f"{path} is a folder, read as `datasets.save_to_disk` output; `pip install datasets`."
            ) from error

        return [(f"record {n}", r) for n, r in enumerate(datasets.load_from_disk(str(path)), 1)]
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet
        except ImportError as error:
            raise RLSFTError(f"{path} is a parquet file, read with pyarrow; `pip install pyarrow`.") from error

        return [(f"record {n}", r) for n, r in enumerate(pyarrow.parquet.read_table(path).to_pylist(), 1)]
    data = path.read_bytes()
    try:
        text = data.decode()
    except UnicodeDecodeError as error:
        start = data.rfind(b"\n", 0, error.start) + 1  # of the line holding the bad byte
        line, column = data.count(b"\n", 0, start) + 1, error.start - start + 1
        raise RLSFTError(f"{path} line {line} is not UTF-8 (its byte {column}); save the file as UTF-8.") from error
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                records.append((f"line {number}", json.loads(line)))
            except json.JSONDecodeError as error:
                raise RLSFTError(f"{path} line {number} is not JSON ({error.msg}); fix or drop that line.") from error
    return records


class PromptAnswerFile(TextTask):
    """Any JSONL of records holding a prompt and an answer field."""

    name = "jsonl"

    def __init__(self, path: str, prompt_key: str = "prompt", answer_key: str = "answer") -> None:
        self.path, self.prompt_key, self.answer_key = path, prompt_key, answer_key

    def examples(self, split: str) -> list[TextExample]:
        check_split(split)
        if split == "test" and "{split}" not in self.path:
            warnings.warn(
                f"{self.path} has no {{split}}, so the test split is the train split and held-out accuracy is"
                " measured on training prompts; give each split its own file, named by {split} in the path"
                " (\"env.task.options.path='data_{split}.jsonl'\", quoted so for hydra, reads data_train.jsonl"
                " and data_test.jsonl).",
                RuntimeWarning,
                stacklevel=2,
            )
        path = Path(self.path.replace("{split}", split)).expanduser()  # only {split}: other braces are the path's
        fix = f"fix that record, or name the file's fields as the {self.name} task's prompt_key and answer_key"
        records = read_records(path, [self.prompt_key, self.answer_key], fix)
        return [TextExample(str(r[self.prompt_key]), str(r[self.answer_key])) for r in records]


class GSM8K(PromptAnswerFile):
    name = "gsm8k"

    def __init__(self, path: str) -> None:
        super().__init__(path, prompt_key="question", answer_key="answer")


class MATH(PromptAnswerFile):
    name = "math"
    verifier = "math_equivalence"

    def __init__(self, path: str) -> None:
        super().__init__(path, prompt_key="problem", answer_key="solution")
