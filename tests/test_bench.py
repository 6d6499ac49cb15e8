"""`rlsft bench <suite> size=quick`: the whole pipeline of each suite, checked for structure and finite numbers."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from rlsft.bench.aggregate import aggregate_scores
from rlsft.bench.grid import train_overrides
from rlsft.bench.report import invoked_command
from rlsft.cli import compose_config, main

pytest.importorskip("rliable")


def numbers(node) -> list[float]:
    if isinstance(node, dict):
        return [x for value in node.values() for x in numbers(value)]
    if isinstance(node, list):
        return [x for value in node for x in numbers(value)]
    return [float(node)] if isinstance(node, (int, float)) and not isinstance(node, bool) else []


def test_control_quick_trains_reports_and_rebuilds_from_the_runs(tmp_path, capsys):
    root = tmp_path / "runs, all here"  # one path (quoted as hydra wants it), not a sweep over two
    common = ["bench", "control", "size=quick", f"root='{root}'", f"data_dir={tmp_path / 'data'}",
              "bootstrap_reps=200"]  # fmt: skip
    assert main([*common, f"results={tmp_path / 'report'}"]) == 0
    capsys.readouterr()
    assert (root / "hopper-medium-replay" / "bc" / "seed1" / "summary.json").is_file()
    record = json.loads((tmp_path / "report" / "control.json").read_text())
    assert set(record["tasks"]) == {"hopper-medium-replay", "hopper-medium-expert"}
    for rows in record["tasks"].values():
        assert set(rows) == {"pi_ref", "bc", "filtered_sft", "sft", "sft_q", "iw_sft", "iw_sft_q", "dft", "rwr", "awr"}
        assert all(len(rows[algorithm]["seeds"]) == 2 for algorithm in rows if algorithm != "pi_ref")
    assert set(record["aggregate"]["probability_of_improvement"]) == {
        "iw_sft_q,sft_q",
        "sft_q,filtered_sft",
        "iw_sft,sft",
    }
    assert record["environment"]["versions"]["torch"] and all(math.isfinite(x) for x in numbers(record["tasks"]))
    assert all(math.isfinite(x) for x in numbers(record["aggregate"]))
    for name in ("control.md", "learning_curves.png", "weights.png", "intervals.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0
    assert "| hopper-medium-replay |" in (tmp_path / "report" / "control.md").read_text()

    assert main([*common, "train=false", f"results={tmp_path / 'rebuilt'}"]) == 0  # from the run folders alone
    rebuilt = json.loads((tmp_path / "rebuilt" / "control.json").read_text())
    assert rebuilt["tasks"] == record["tasks"] and rebuilt["aggregate"] == record["aggregate"]
    assert main([*common, "train=false", "tasks=[hopper-medium-expert]", f"results={tmp_path / 'one'}"]) == 0
    one = json.loads((tmp_path / "one" / "control.json").read_text())  # a part of the bench: its tasks alone
    assert one["tasks"] == {"hopper-medium-expert": record["tasks"]["hopper-medium-expert"]}
    beside = f"beside={tmp_path / 'report' / 'control.json'}"  # a report beside another: here, beside itself
    assert main([*common, "train=false", beside, f"results={tmp_path / 'beside'}"]) == 0
    text = (tmp_path / "beside" / "control.md").read_text()
    section = text.split("## Final normalized_score beside ", 1)[1].split("\n## ", 1)[0]
    for name, rows in record["tasks"].items():
        means = [f"{rows[column]['final']['mean']:.1f}" for column in ("pi_ref", "bc", "iw_sft_q", "awr")]
        assert all(f"{mean} → {mean}" in section for mean in means) and f"| {name} |" in section

    # the same root holds version 2's runs (the default): a bench of version 1's datasets refuses them
    assert main([*common, "version=1", "train=false", f"results={tmp_path / 'v1'}"]) == 2
    error = capsys.readouterr().err
    assert "holds a finished run with data=rlsft/hopper/medium-replay-s3000-v2, not the" in error
    assert "pass another root=" in error and not (tmp_path / "v1").exists()
    # and a bench on raw observations (every report before v4's) refuses runs on standardised ones
    assert main([*common, "normalize_observations=false", "train=false", f"results={tmp_path / 'raw'}"]) == 2
    assert "with policy.normalize_observations=True, not the False that" in capsys.readouterr().err


def test_a_bench_reads_back_the_runs_it_trained_and_its_best_is_the_trainings(tmp_path, capsys):
    """A size's settings were compared with the runs' as text: learner.lr=1e-4 (recorded as 0.0001) and
    learner.compile=false (False) refused the runs the bench had just trained. And the best evaluation during
    training counted the step-0 one, the start policy's."""
    others = [f"~methods.{method}" for method in compose_config("bench/control", []).methods if method != "bc"]
    train = ["learner.steps=2", "learner.batch_size=8", "learner.warmup_steps=0", "evaluation.every=1",
             "evaluation.interim_episodes=1", "evaluation.episodes=1", "env.max_episode_steps=50", "log_every=1",
             "learner.lr=1e-4", "learner.compile=false"]  # fmt: skip
    common = ["bench", "control", "size=quick", "tasks=[hopper-medium-replay]", "sizes.quick.seeds=[0]",
              f"sizes.quick.train=[{','.join(repr(setting) for setting in train)}]", f"root={tmp_path / 'runs'}",
              f"data_dir={tmp_path / 'data'}", "bootstrap_reps=10", "improvements=[]", "claims=[]",
              *others]  # fmt: skip
    assert main([*common, f"results={tmp_path / 'report'}"]) == 0
    evaluations = tmp_path / "runs" / "hopper-medium-replay" / "bc" / "seed0" / "eval.csv"
    rows = evaluations.read_text().splitlines()
    header, start = rows[0].split(","), rows[1].split(",")
    assert start[0] == "0" and len(rows) == 4  # steps 0, 1 and 2
    start[header.index("normalized_score")] = "1000"  # a start that no training reaches
    evaluations.write_text("\n".join([rows[0], ",".join(start), *rows[2:]]) + "\n")
    assert main([*common, "train=false", f"results={tmp_path / 'again'}"]) == 0
    capsys.readouterr()
    record = json.loads((tmp_path / "again" / "control.json").read_text())
    trained = [float(row.split(",")[header.index("normalized_score")]) for row in rows[2:]]
    assert record["tasks"]["hopper-medium-replay"]["bc"]["best"]["mean"] == pytest.approx(max(trained))


@pytest.mark.parametrize(
    "setting, words",
    [
        *[(f"bootstrap_reps={reps}", "must be a positive integer") for reps in ("0", "abc", "true")],
        # these were tracebacks when the report was written, after the whole grid had trained
        ("improvements=[iw_sft,sft]", "improvements=['iw_sft', 'sft'] must be a list of [better, worse] pairs"),
        ("claims=[[iw_sft,sft]]", "must be a list of [better, worse, what it means when false] triples"),
        ("reference_methods=null", "reference_methods=None must be a list of method names"),
        ("sizes.quick.seeds=[]", "sizes.quick.seeds=[] must be a non-empty list of integer seeds"),
    ],
)
def test_report_settings_are_checked_before_any_training(setting, words, tmp_path, capsys):
    root = tmp_path / "runs"
    assert main(["bench", "control", "size=quick", f"root={root}", setting]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"rlsft: error: {setting.split('=')[0]}=") and words in line
    assert not root.exists()  # said before the grid trained, not after it


def test_a_beside_report_without_numbers_is_one_sentence(tmp_path, capsys):
    """A final mean that is no number was a format error when the report was written, after the training."""
    other = {"suite": "control", "environment": None, "tasks": {"t": {"bc": {"final": {"mean": "high"}}}}}
    (tmp_path / "other.json").write_text(json.dumps(other))
    beside = f"beside={tmp_path / 'other.json'}"
    assert main(["bench", "control", "size=quick", f"root={tmp_path / 'runs'}", "train=false", beside]) == 2
    assert "is not a bench report's JSON (a final mean is not a number)" in capsys.readouterr().err


def test_a_sweeps_paths_reach_hydra_as_they_are(tmp_path, monkeypatch):
    """Without RLSFT_DATA, data_dir is ~/.cache/rlsft, whose `~` hydra's override parser refused: on a fresh
    machine `rlsft bench control` stopped before its first run. A root with a space, a comma and a quote is
    one path too, not a sweep or a syntax error."""
    monkeypatch.delenv("RLSFT_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = compose_config("bench/control", ["size=quick"])
    cfg.root = str(tmp_path / "bench runs, it's here")
    parsed = OverridesParser.create().parse_overrides(train_overrides(cfg, "hopper-medium-replay", "bc", [0, 1]))
    values = {override.key_or_group: override.value() for override in parsed if not override.is_sweep_override()}
    assert values["data_dir"] == str(tmp_path / ".cache" / "rlsft")
    assert values["run_dir"] == f"{tmp_path}/bench runs, it's here/hopper-medium-replay/bc/seed${{seed}}"


def test_aggregate_intervals_do_not_depend_on_numpys_global_rng():
    scores = {method: np.random.default_rng(k).normal(size=(3, 6)) for k, method in enumerate(("a", "b"))}
    np.random.seed(1)
    first = aggregate_scores(scores, [("a", "b")], reps=100)
    after = np.random.random()
    np.random.seed(1)
    assert aggregate_scores(scores, [("a", "b")], reps=100) == first  # rliable draws from np.random: seeded
    assert np.random.random() == after  # and the caller's stream goes on as if it had not
    np.random.seed(2)
    assert aggregate_scores(scores, [("a", "b")], reps=100) == first


def test_an_unfinished_suite_and_a_bad_suite_are_one_sentence(tmp_path, capsys):
    assert main(["bench", "control", "size=quick", "train=false", f"root={tmp_path}"]) == 2
    assert "runs of the control suite are not finished" in capsys.readouterr().err
    assert (
        main(["bench", "control", "size=quick", "train=false", f"root={tmp_path}", "tasks=[hoper-medium-expert]"]) == 2
    )
    assert (
        "tasks=hoper-medium-expert is not a task of the control suite's size quick (did you mean hopper-medium-expert?)"
        in capsys.readouterr().err
    )
    assert main(["bench", "control", "size=quick", "train=true", f"root={tmp_path}", f"beside={tmp_path}/v0.json"]) == 2
    assert f"beside={tmp_path}/v0.json is not a bench report's JSON" in capsys.readouterr().err  # before training
    assert not any(tmp_path.iterdir())
    (tmp_path / "text.json").write_text(json.dumps({"suite": "text", "tasks": {}}))
    assert main(["bench", "control", "size=quick", f"root={tmp_path}", f"beside={tmp_path}/text.json"]) == 2
    assert "is a report of the text suite; name a control suite's control.json" in capsys.readouterr().err
    assert main(["bench", "control", "size=quick", "train=false", f"root={tmp_path}", "tasks=[]"]) == 2
    assert "tasks=[] names no task; name some of ['hopper-medium-replay'" in capsys.readouterr().err
    every_method = [f"~methods.{method}" for method in compose_config("bench/control", []).methods]
    assert main(["bench", "control", "size=quick", "train=false", f"root={tmp_path}", *every_method]) == 2
    assert "The control suite has no method left to run" in capsys.readouterr().err
    assert main(["bench", "contrl"]) == 2
    assert "Unknown bench suite 'contrl' (did you mean control?)" in capsys.readouterr().err
    for methods in ("[]", "[sft,iw_polcy]"):
        assert main(["bench", "bound", "size=quick", f"methods={methods}", f"results={tmp_path}"]) == 2
        assert "must name some of ['sft', 'iw_policy', 'iw_ema', 'iw_copy']" in capsys.readouterr().err
    for suite in ("control", "text", "bound", "speed"):
        assert main(["bench", suite, "size=huge"]) == 2
        assert "Unknown bench size 'huge'" in capsys.readouterr().err


def test_a_bench_whose_runs_fail_or_whose_root_cannot_be_made_says_so_in_one_sentence(tmp_path, capsys):
    """The sweep's jobs' errors are read from its folder as hydra names it: a root that needs quoting (spaces,
    a comma) once hid them, and the bench went on to a report of unfinished runs."""
    root = tmp_path / "runs, all here"
    common = ["bench", "control", "size=quick", f"data_dir={tmp_path / 'data'}", f"results={tmp_path / 'report'}"]
    assert main([*common, f"root='{root}'", "sizes.quick.train=['learner.lr=-1']"]) == 2
    error = capsys.readouterr().err
    assert "runs of bc on hopper-medium-replay failed (the first: learner.lr is out of range" in error
    (tmp_path / "a file").write_text("kept")
    assert main([*common, f"root='{tmp_path / 'a file'}'"]) == 2
    assert "Cannot read or write" in capsys.readouterr().err.splitlines()[-1]
    assert (tmp_path / "a file").read_text() == "kept"


def test_speed_quick_runs_every_speed_benchmark_and_gathers_their_tables(tmp_path, capsys):
    assert main(["bench", "speed", "size=quick", f"results={tmp_path}"]) == 0
    record = json.loads((tmp_path / "speed.json").read_text())
    assert set(record["benchmarks"]) == {"learner_throughput", "env_sampling", "text_throughput"}
    for name, entry in record["benchmarks"].items():
        if "skipped" in entry:  # text_throughput needs TRL, which rlsft does not depend on
            assert name == "text_throughput"
            continue
        assert math.isfinite(entry["seconds"]) and (tmp_path / f"{name}.md").stat().st_size > 0
    report = (tmp_path / "speed.md").read_text()
    assert "## Learner throughput" in report and "## Environment sampling throughput" in report


def test_text_quick_trains_every_method_and_reports_accuracy(tmp_path, capsys):
    argv = ["bench", "text", "size=quick", f"root={tmp_path / 'runs'}", f"data_dir={tmp_path / 'data'}",
            f"results={tmp_path / 'report'}", "bootstrap_reps=200"]  # fmt: skip
    assert main(argv) == 0
    record = json.loads((tmp_path / "report" / "text.json").read_text())
    rows = record["tasks"]["tiny_lm-arithmetic"]
    assert set(rows) == {"pi_ref", "sft", "iw_sft", "iw_sft_per_step", "sft_q", "dft", "rwr", "sft_iterated",
                         "iw_sft_iterated", "grpo", "mix"}  # fmt: skip
    sampled = {method: row["sampled"]["mean"] for method, row in rows.items() if method != "pi_ref"}
    offline = 24 * 2  # quick: 24 prompts, 2 completions each, sampled once
    assert sampled["sft"] == sampled["dft"] == offline
    assert sampled["sft_iterated"] == sampled["iw_sft_iterated"] == offline * 2  # 4 steps, a round every 2
    assert sampled["grpo"] == 4 * 2 * 4 and sampled["mix"] == 4 * 2 * 4 + offline  # 4 steps of 2 prompts x 4
    assert (tmp_path / "report" / "budget.png").is_file()
    assert all(0 <= x <= 100 for x in numbers({m: r["final"]["mean"] for m, r in rows.items()}))
    assert all(math.isfinite(x) for x in numbers(record["aggregate"]))
    report = (tmp_path / "report" / "text.md").read_text()
    assert "| tiny_lm-arithmetic |" in report
    assert "grpo: algorithm=grpo learner.steps=4 evaluation.every=2" in report  # the quick size's own settings


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["/venv/bin/rlsft", "bench", "control", "version=1"], "rlsft bench control version=1"),
        (
            ["/repo/rlsft/cli.py", "bench", "control", "~sizes.full.tasks.a"],
            "rlsft bench control '~sizes.full.tasks.a'",
        ),
        (["/venv/bin/pytest", "-q"], None),  # another program called main(): the report says the default command
    ],
)
def test_a_report_names_the_command_that_started_it(argv, command, monkeypatch):
    monkeypatch.setattr(sys, "argv", argv)  # `python -m rlsft.cli` sets argv[0] to the module's file
    assert invoked_command() == command


def test_a_size_runs_only_the_methods_it_names(tmp_path, capsys):
    """SmolLM2's reduced CPU size runs 5 of the text suite's 10 methods (it ran all, mix and the iterated ones
    on SmolLM2 on a CPU, and its own report could not be rebuilt with its recorded command)."""
    argv = ["bench", "text", "size=reduced", "train=false", f"root={tmp_path}"]
    assert main(argv) == 2
    assert "15 runs of the text suite are not finished" in capsys.readouterr().err  # 5 methods x 3 seeds
    assert main([*argv, "sizes.reduced.only=[sft,mixx]"]) == 2
    assert "sizes.reduced.only names ['mixx'], not methods of the text suite" in capsys.readouterr().err
