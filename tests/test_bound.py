"""Suite `bound`: J(theta) and method.md §2's two lower bounds, computed exactly over training."""

from __future__ import annotations

import json

import pytest

from rlsft.bench.bound import bandit, sequences, train
from rlsft.cli import main

TOLERANCE = 1e-6  # float32 sums over at most 81 trajectories


@pytest.mark.parametrize("task", [bandit(), sequences(3, 3, 4)], ids=["bandit", "sequences"])
@pytest.mark.parametrize("method", ["sft", "iw_policy", "iw_ema", "iw_copy"])
def test_both_bounds_stay_below_j_and_the_iw_bound_is_the_tighter(task, method):
    records = train(task, method, steps=60, lr=0.05, ema_decay=0.9, copy_every=10)
    for r in records:
        assert r["B_sft"] <= r["J"] + TOLERANCE and r["B_iw"] <= r["J"] + TOLERANCE, r
        assert r["B_iw"] >= r["B_sft"] - TOLERANCE, r  # q is closer to p(.;theta) than pi_ref is
    assert records[-1]["J"] > records[0]["J"]  # training on curated data improves the RL objective
    if method == "iw_policy":  # q = p(.;theta): the bound is J itself
        assert all(abs(r["B_iw"] - r["J"]) < TOLERANCE for r in records)


def test_on_the_bandit_sft_stops_at_five_sixths_and_iw_sft_goes_on():
    sft, iw = (train(bandit(), method, 1500, 0.05, 0.9, 50)[-1]["J"] for method in ("sft", "iw_policy"))
    assert sft == pytest.approx(5 / 6, abs=2e-3) and iw > 0.97  # method.md §5


def test_the_bound_suite_writes_its_report(tmp_path, capsys):
    assert main(["bench", "bound", "size=quick", f"results={tmp_path}"]) == 0
    record = json.loads((tmp_path / "bound.json").read_text())
    assert set(record["runs"]) == {"bandit", "sequences"} and (tmp_path / "bound.png").stat().st_size > 0
    assert "| bandit | sft |" in (tmp_path / "bound.md").read_text()


@pytest.mark.parametrize(
    ("override", "sentence"),
    [
        ("lr=-1", "bound.lr is out of range"),
        ("lr=abc", "lr='abc' should be a number"),
        ("ema_decay=abc", "ema_decay='abc' should be a number"),
        ("sizes.quick.steps=0", "bound.steps (or epochs) is out of range"),
        ("sizes.quick.sequences.length=0", "must have a positive length and number of actions and a threshold"),
        ("sizes.quick.sequences.threshold=7", "a threshold that some sequence reaches"),
    ],
)
def test_a_bad_bound_setting_is_one_sentence_before_any_training(override, sentence, tmp_path, capsys):
    """These were tracebacks (ValueError, TypeError, IndexError), some after other methods had trained."""
    assert main(["bench", "bound", "size=quick", override, f"results={tmp_path / 'report'}"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("rlsft: error: ") and sentence in line
    assert not (tmp_path / "report").exists()
