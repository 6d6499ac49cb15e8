"""Prompt/answer records from local files: any JSONL, GSM8K's and MATH's published formats.

GSM8K (`question`, `answer` ending in `#### <number>`) and MATH (`problem`, `solution` with
a final `\\boxed{}`) are read from JSONL or parquet files, or from a directory written by
`datasets.Dataset.save_to_disk`; `{split}` in a path is replaced by the split's name.
"""

from __future__ import annotations

import json
from pathlib import Path

from rlsft.envs.text.base import SPLITS, TextExample, TextTask
from rlsft.errors import RLSFTError


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        raise RLSFTError(f"{path} does not exist; give the path of a local file.")
    if path.is_dir():  # datasets.Dataset.save_to_disk
        import datasets

        return list(datasets.load_from_disk(str(path)))
    if path.suffix == ".parquet":
        import pyarrow.parquet

        return pyarrow.parquet.read_table(path).to_pylist()
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise RLSFTError(f"{path} line {number} is not JSON ({error.msg}); fix or drop that line.") from error
    return records


class PromptAnswerFile(TextTask):
    """Any JSONL of records holding a prompt and an answer field."""

    name = "jsonl"

    def __init__(self, path: str, prompt_key: str = "prompt", answer_key: str = "answer") -> None:
        self.path, self.prompt_key, self.answer_key = path, prompt_key, answer_key

    def examples(self, split: str) -> list[TextExample]:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        path = Path(self.path.format(split=split)).expanduser()
        records = read_records(path)
        missing = [key for key in (self.prompt_key, self.answer_key) if records and key not in records[0]]
        if not records or missing:
            raise RLSFTError(
                f"{path} has no records with fields {self.prompt_key!r} and {self.answer_key!r}; fix the file or the task's keys."
            )
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
