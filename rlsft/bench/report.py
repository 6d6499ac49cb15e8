"""A bench suite's report: the Markdown table, the JSON record of every run, and the PNG plots."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import re
import shlex
import sys
from importlib import resources
from pathlib import Path

import matplotlib
import numpy as np
import torch
from omegaconf import OmegaConf

from rlsft.bench.aggregate import rliable
from rlsft.errors import RLSFTError

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the file backend)

PACKAGES = ("rlsft", "torch", "torchrl", "tensordict", "gymnasium", "mujoco", "minari", "hydra-core", "rliable")
REFERENCE = "pi_ref"


def mean_std(values: list[float]) -> dict:
    """Mean and (population) std over seeds, with the count."""
    array = np.asarray(values, dtype=float)
    return {"mean": float(array.mean()), "std": float(array.std()), "n": len(values)}


def invoked_command() -> str | None:
    """This process's `rlsft ...` command, as a shell would take it, when it was started as rlsft (the entry point
    or `python -m rlsft.cli`); None when another program called rlsft's main()."""
    program = Path(sys.argv[0])
    if program.name == "rlsft" or program.parts[-2:] == ("rlsft", "cli.py"):
        return shlex.join(["rlsft", *sys.argv[1:]])
    return None


def environment() -> dict:
    """Where and with what the numbers were made."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": invoked_command(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.system()}",
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "python": platform.python_version(),
        "versions": versions,
    }


def cell(stats: dict | None) -> str:
    return "" if stats is None else f"{stats['mean']:.1f} ± {stats['std']:.1f}"


def ppo_reference(path: Path) -> dict[str, float]:
    """PPO's final evaluation return per env from benchmarks/results/ppo_returns.md, D4RL-normalised."""
    if not path.is_file():
        return {}
    scores = {}
    for env, mean in re.findall(r"^\| (\w+) \| \d+ \| (-?[\d.]+) ±", path.read_text(), flags=re.MULTILINE):
        anchors = OmegaConf.load(resources.files("rlsft.configs") / "env" / f"{env}.yaml")
        scores[env] = 100 * (float(mean) - anchors.ref_min_score) / (anchors.ref_max_score - anchors.ref_min_score)
    return scores


def beside_report(path: str | None, suite: str) -> dict | None:
    """Another report of the same suite (its JSON) to set this one's final scores beside: another dataset version,
    commit or machine. Its means per task and column, its command and date; None without `beside=`."""
    if path is None:
        return None
    try:
        other = json.loads(Path(path).expanduser().read_text())
        if other["suite"] != suite:
            raise RLSFTError(
                f"beside={path} is a report of the {other['suite']} suite; name a {suite} suite's {suite}.json."
            )
        finals = {
            task: {column: row["final"]["mean"] for column, row in rows.items()}
            for task, rows in other["tasks"].items()
        }
        made = other.get("environment") or {}
        if not all(isinstance(mean, int | float) for rows in finals.values() for mean in rows.values()):
            raise ValueError("a final mean is not a number")
        found = {"command": made.get("command"), "date": made.get("date")}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise RLSFTError(f"beside={path} is not a bench report's JSON ({error}); name a <suite>.json a bench wrote.")
    return {"path": str(path), **found, "finals": finals}


def beside_section(beside: dict | None, table: dict, columns: list[str], score: str, task: str) -> list[str]:
    """Markdown: the other report's final means beside this one's, `theirs -> ours` per task and column."""
    if not beside:
        return []
    lines = ["", f"## Final {score} beside {beside['path']} (its mean → this report's)", "",
             f"The other report: `{beside['command'] or 'its command is not recorded'}`, {beside['date']}; a cell is"
             " empty where either report lacks the task or the column.", "",
             f"| {task} | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]  # fmt: skip
    for name, rows in table.items():
        theirs = beside["finals"].get(name, {})
        pairs = [
            f"{theirs[c]:.1f} → {rows[c]['final']['mean']:.1f}" if c in theirs and c in rows else "" for c in columns
        ]
        lines.append(f"| {name} | " + " | ".join(pairs) + " |")
    return lines


def method_settings(config: dict, method: str) -> dict:
    """A method's `rlsft train` overrides as this size runs them: the suite's, then the size's own."""
    return {**config["methods"][method], **(config["sizes"][config["size"]].get("methods") or {}).get(method, {})}


def markdown(record: dict) -> str:
    config, table, env = record["config"], record["tasks"], record["environment"]
    size, methods, task = config["sizes"][config["size"]], list(config["methods"]), config["task_label"]
    columns = [REFERENCE, *methods]
    default_command = f"rlsft bench {config['suite']} size={config['size']}"
    lines = [
        f"# {config['suite'].capitalize()} suite ({config['size']}): {config['title']}",
        "",
        f"- command: `{env['command'] or default_command}`",
        f"- date: {env['date']}; machine: {env['machine']}; device: {env['device']}",
        "- versions: " + ", ".join(f"{name} {version}" for name, version in env["versions"].items() if version),
        f"- seeds: {size['seeds']}; extra train overrides: {' '.join(size['train']) or 'none'}"
        " (the budget: cpu unless CUDA)",
        f"- score: {config['score_label']}; {REFERENCE}: {config['reference_label']}",
        "- methods (with this size's settings): "
        + "; ".join(f"{m}: {' '.join(f'{k}={v}' for k, v in method_settings(config, m).items())}" for m in methods),
        "",
        f"## Final {config['score']} (mean ± std over {len(size['seeds'])} seeds)",
        "",
        f"| {task} | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, rows in table.items():
        lines.append(f"| {name} | " + " | ".join(cell(rows.get(c, {}).get("final")) for c in columns) + " |")
    lines += beside_section(record.get("beside"), table, columns, config["score"], task)
    lines += ["", "## Best evaluation during training (mean ± std)", "",
              f"| {task} | " + " | ".join(methods) + " |", "|---|" + "---:|" * len(methods)]  # fmt: skip
    for name, rows in table.items():
        lines.append(f"| {name} | " + " | ".join(cell(rows[m]["best"]) for m in methods) + " |")
    aggregate = record["aggregate"]
    lines += ["", f"## Across {task}s (rliable: stratified bootstrap, 95% intervals)", "",
              "| method | IQM | mean |", "|---|---:|---:|"]  # fmt: skip
    for algorithm, stats in aggregate["scores"].items():
        iqm, mean = stats["iqm"], stats["mean"]
        lines.append(
            f"| {algorithm} | {iqm['estimate']:.1f} [{iqm['ci95'][0]:.1f}, {iqm['ci95'][1]:.1f}]"
            f" | {mean['estimate']:.1f} [{mean['ci95'][0]:.1f}, {mean['ci95'][1]:.1f}] |"
        )
    lines += ["", "| probability that | improves on | P | 95% interval |", "|---|---|---:|---|"]
    for pair, stats in aggregate["probability_of_improvement"].items():
        better, worse = pair.split(",")
        low, high = stats["ci95"]
        lines.append(f"| {better} | {worse} | {stats['estimate']:.2f} | [{low:.2f}, {high:.2f}] |")
    if config.get("sampled_label"):
        lines += ["", f"## What each method sampled and spent by its end (mean ± std over {len(size['seeds'])} seeds)",
                  "", f"| {task} | method | {config['sampled_label']} | training seconds |",
                  "|---|---|---:|---:|"]  # fmt: skip
        lines += [f"| {name} | {m} | {rows[m]['sampled']['mean']:.0f} | {cell(rows[m]['seconds'])} |"
                  for name, rows in table.items() for m in methods]  # fmt: skip
        lines += ["", config["sampled_note"], "", "![score against samples and seconds](budget.png)"]
    lines += ["", "## Where the measurements disagree with the paper", ""]
    lines += [f"- {sentence}" for sentence in record["disagreements"]]
    compared = [(better, worse) for better, worse, _ in config["claims"] if better in methods and worse in methods]
    if compared:
        checked = ", ".join(f"{better} >= {worse}" for better, worse in compared)
        lines.append(f"- Elsewhere the paper's order holds or the difference is within one std over seeds ({checked}).")
    left_out = [f"{better} >= {worse}" for better, worse, _ in config["claims"] if (better, worse) not in compared]
    if left_out:
        lines.append(f"- Not compared, a method being left out of this report: {', '.join(left_out)}.")
    if record.get("ppo"):
        lines += ["", "## Online reference: PPO at 1M frames (benchmarks/results/ppo_returns.md)", "",
                  "| env | normalised score |", "|---|---:|"] + [f"| {e} | {s:.1f} |" for e, s in record["ppo"].items()]  # fmt: skip
    published = config.get("published") or {}
    if published:
        names = list(next(iter(published.values())))
        lines += ["", "## Published baselines on D4RL's v2 datasets (IQL paper; other data than rlsft's)", "",
                  "| dataset | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]  # fmt: skip
        lines += [f"| {d} | " + " | ".join(f"{v[n]:.1f}" for n in names) + " |" for d, v in published.items()]
    lines += ["", "![learning curves](learning_curves.png)", "", "![importance weights](weights.png)", "",
              "![aggregate scores](intervals.png)", ""]  # fmt: skip
    return "\n".join(lines)


def over_seeds(seeds: dict, curve: str) -> tuple[list[int], np.ndarray]:
    """The evaluation steps every seed's run has, and each seed's `curve` (Run.curve, .sampled, .seconds) there."""
    steps = sorted(set.intersection(*(set(step for step, _ in run.curve) for run in seeds.values())))
    return steps, np.array([[dict(getattr(run, curve))[step] for step in steps] for run in seeds.values()])


def plot_curves(runs: dict, table: dict, score: str, path: Path) -> None:
    """Per dataset: each algorithm's evaluations, mean +- std over seeds; pi_ref's score dashed."""
    figure, axes = plt.subplots(1, len(runs), figsize=(max(8.0, 4.2 * len(runs)), 3.8), squeeze=False)
    for axis, (dataset, by_algorithm) in zip(axes[0], runs.items()):
        for algorithm, seeds in by_algorithm.items():
            steps, values = over_seeds(seeds, "curve")
            (line,) = axis.plot(steps, values.mean(0), label=algorithm)
            axis.fill_between(steps, values.mean(0) - values.std(0), values.mean(0) + values.std(0),
                              color=line.get_color(), alpha=0.15)  # fmt: skip
        if REFERENCE in table[dataset]:
            axis.axhline(table[dataset][REFERENCE]["final"]["mean"], color="black", linestyle="--", label=REFERENCE)
        axis.set(title=dataset, xlabel="gradient steps", ylabel=score)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False)
    figure.tight_layout(rect=(0, 0.16, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_budget(runs: dict, score: str, sampled_label: str, path: Path) -> None:
    """Per task: each method's evaluations against what it had sampled and against its training seconds, means
    over seeds: which method buys the most with equal samples, or equal time."""
    figure, axes = plt.subplots(2, len(runs), figsize=(max(8.0, 4.2 * len(runs)), 7.0), squeeze=False)
    for column, (task, by_method) in enumerate(runs.items()):
        for method, seeds in by_method.items():
            _, values = over_seeds(seeds, "curve")
            for row, spent in enumerate(("sampled", "seconds")):
                axes[row][column].plot(over_seeds(seeds, spent)[1].mean(0), values.mean(0), marker=".", label=method)
        axes[0][column].set(title=task, xlabel=sampled_label, ylabel=score)
        axes[1][column].set(xlabel="training seconds", ylabel=score)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), frameon=False)
    figure.tight_layout(rect=(0, 0.1, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_weights(runs: dict, path: Path) -> None:
    """Per dataset: iw-SFT's effective sample size and largest weight over training, mean over seeds."""
    figure, axes = plt.subplots(2, len(runs), figsize=(4.2 * len(runs), 5.6), squeeze=False)
    for column, (dataset, by_algorithm) in enumerate(runs.items()):
        for algorithm, seeds in by_algorithm.items():
            rows = [run.weights for run in seeds.values() if run.weights]
            if not rows:
                continue
            length = min(len(row) for row in rows)
            steps = [step for step, _, _ in rows[0][:length]]
            for row, index in ((0, 1), (1, 2)):
                values = np.array([[entry[index] for entry in run[:length]] for run in rows])
                axes[row][column].plot(steps, values.mean(0), label=algorithm)
        axes[0][column].set(title=dataset, ylabel="weight ESS (of the batch)")
        axes[0][column].ticklabel_format(axis="y", useOffset=False)
        axes[1][column].set(xlabel="gradient steps", ylabel="max weight", yscale="log")
        axes[0][column].legend(frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_intervals(aggregate: dict, xlabel: str, path: Path) -> None:
    """rliable's interval plot of IQM and mean."""
    from rliable import plot_utils

    rliable()
    scores = aggregate["scores"]
    points = {a: np.array([s["iqm"]["estimate"], s["mean"]["estimate"]]) for a, s in scores.items()}
    intervals = {a: np.array([s["iqm"]["ci95"], s["mean"]["ci95"]]).T for a, s in scores.items()}
    figure, _ = plot_utils.plot_interval_estimates(points, intervals, metric_names=["IQM", "Mean"],
                                                   algorithms=list(scores), xlabel=xlabel)  # fmt: skip
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)


def write_report(folder: Path, record: dict, runs: dict) -> dict:
    """<suite>.md, <suite>.json and the three plots in `folder`; returns where they are."""
    folder.mkdir(parents=True, exist_ok=True)
    record["ppo"] = ppo_reference(Path(record["config"].get("ppo_results") or ""))
    name = record["suite"]
    (folder / f"{name}.json").write_text(json.dumps(record, indent=2))
    (folder / f"{name}.md").write_text(markdown(record))
    plot_curves(runs, record["tasks"], record["config"]["score"], folder / "learning_curves.png")
    plot_weights(runs, folder / "weights.png")
    if record["config"].get("sampled_label"):
        plot_budget(runs, record["config"]["score"], record["config"]["sampled_label"], folder / "budget.png")
    plot_intervals(record["aggregate"], record["config"]["score"], folder / "intervals.png")
    runs_count = sum(len(seeds) for by_method in runs.values() for seeds in by_method.values())
    return {"report": str(folder / f"{name}.md"), "json": str(folder / f"{name}.json"), "runs": runs_count}
