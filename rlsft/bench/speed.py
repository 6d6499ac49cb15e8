"""Suite `speed`: learner_throughput, env_sampling and text_throughput (benchmarks/*.py) under one command.

Each script keeps its own method (interleaved rounds in one process, ratios against a baseline run
beside it) and writes its own results file; speed.md gathers them with the commands and wall-clock.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import DictConfig

from rlsft.bench.report import environment
from rlsft.errors import RLSFTError


def run(cfg: DictConfig) -> dict:
    scripts, results = Path(cfg.scripts).expanduser(), Path(cfg.results).expanduser()
    if not scripts.is_dir():
        raise RLSFTError(f"{scripts} holds no benchmark scripts; run `rlsft bench speed` from the repository root.")
    results.mkdir(parents=True, exist_ok=True)
    record, sections = {"suite": "speed", "size": cfg.size, "environment": environment(), "benchmarks": {}}, []
    for name, arguments in cfg.sizes[cfg.size].items():
        module = cfg.needs.get(name)
        if module and importlib.util.find_spec(module) is None:
            record["benchmarks"][name] = {"skipped": f"needs {module}, which is not installed"}
            sections += [f"## {name}", "", f"Skipped: it needs `{module}`, which is not installed.", ""]
            continue
        out = results / f"{name}.md"
        command = [sys.executable, str(scripts / f"{name}.py"), *arguments, "--out", str(out)]
        start = time.perf_counter()
        finished = subprocess.run(command, capture_output=True, text=True)
        if finished.returncode:
            last = (finished.stderr.strip().splitlines() or ["no output"])[-1]
            raise RLSFTError(
                f"{scripts / name}.py failed (exit {finished.returncode}: {last}); run it alone to see why."
            )
        seconds = time.perf_counter() - start
        record["benchmarks"][name] = {"command": " ".join(command[1:]), "seconds": seconds, "results": str(out)}
        body = re.sub(r"^#", "##", out.read_text(), flags=re.MULTILINE)  # its headings one level down
        sections += [f"<!-- {name}: {seconds:.0f} s -->", body, ""]
    header = [f"# Speed suite ({cfg.size})", "", f"- command: `rlsft bench speed size={cfg.size}`",
              f"- date: {record['environment']['date']}; machine: {record['environment']['machine']}", ""]  # fmt: skip
    (results / "speed.md").write_text("\n".join(header + sections))
    (results / "speed.json").write_text(json.dumps(record, indent=2))
    return {"report": str(results / "speed.md"), "benchmarks": record["benchmarks"]}
