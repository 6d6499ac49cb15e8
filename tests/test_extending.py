"""docs/extending.md's worked examples, written out and run exactly as the page shows them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rlsft.cli import main

PAGE = Path(__file__).parents[1] / "docs" / "extending.md"
FILE_BLOCK = re.compile(r"```\w+ file=(\S+)\n(.*?)```", re.S)


def test_the_extending_page_adds_a_task_a_verifier_and_an_algorithm(tmp_path, monkeypatch):
    blocks = FILE_BLOCK.findall(PAGE.read_text())
    assert len(blocks) == 6  # one file and one YAML each for the task, the verifier and the algorithm
    for name, text in blocks:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dir = tmp_path / "run"
    command = [
        "train", "env=times_table", "algorithm=rwr",
        "imports=[my_extensions.times_table,my_extensions.exact_string,my_extensions.rwr]",
        f"hydra.searchpath=[file://{tmp_path / 'my_extensions' / 'configs'}]",
        f"data_dir={tmp_path / 'data'}", f"run_dir={run_dir}", "sampling.samples_per_prompt=1",
        "learner.steps=3", "evaluation.episodes=8", "evaluation.every=0", "log_every=1", "progress=false",
    ]  # fmt: skip
    assert main(command) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["algorithm"] == "rwr" and summary["env"] == "times_table" and summary["steps"] == 3
    assert (
        summary["completions_kept"] == summary["completions_total"] == 121 - 24
    )  # 11 x 11 pairs, 24 held out; curation by none keeps all
    assert 0 <= summary["accuracy"] <= 1
    assert "weight_max" in (run_dir / "train.csv").read_text().splitlines()[0]
