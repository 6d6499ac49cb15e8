"""`rlsft train -m`: hydra multirun through hydra's own sweeper and launchers; `--cfg` as in any hydra app."""

from __future__ import annotations

import json

import pytest
import yaml

from rlsft.cli import main


def sweep(hopper_minari, data_dir, tmp_path, *extra: str) -> list[str]:
    return ["train", "-m", f"data={hopper_minari}", f"data_dir={data_dir}", "algorithm=bc", "seed=0,1",
            "learner.steps=4", "learner.batch_size=8", "learner.warmup_steps=0", "evaluation.episodes=1",
            "progress=false", f"run_dir={tmp_path}/runs/bc-seed${{seed}}", f"hydra.sweep.dir={tmp_path}/sweep",
            *extra]  # fmt: skip


def jobs(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_a_sweep_runs_one_run_per_job_records_itself_and_reads_finished_jobs(hopper_minari, data_dir, tmp_path, capsys):
    assert main(sweep(hopper_minari, data_dir, tmp_path)) == 0
    first = jobs(capsys)
    assert first["failed"] == 0 and [job["summary"]["steps"] for job in first["jobs"]] == [4, 4]
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == ["bc-seed0", "bc-seed1"]
    recorded = yaml.safe_load((tmp_path / "sweep" / "multirun.yaml").read_text())
    assert (
        recorded["hydra"]["overrides"]["task"][-1].endswith("seed=0,1")
        or "seed=0,1" in recorded["hydra"]["overrides"]["task"]
    )
    evaluations = (tmp_path / "runs" / "bc-seed1" / "eval.csv").read_text()
    assert main(sweep(hopper_minari, data_dir, tmp_path)) == 0  # finished jobs are read, not trained again
    again = jobs(capsys)
    assert [job["summary"] for job in again["jobs"]] == [job["summary"] for job in first["jobs"]]
    assert (tmp_path / "runs" / "bc-seed1" / "eval.csv").read_text() == evaluations


def test_joblib_runs_two_jobs_in_parallel_processes(hopper_minari, data_dir, tmp_path, capsys):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    argv = sweep(hopper_minari, data_dir, tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert main(argv) == 0
    result = jobs(capsys)
    assert result["failed"] == 0 and {job["summary"]["steps"] for job in result["jobs"]} == {4}
    assert len({job["summary"]["learning_curve"] for job in result["jobs"]}) == 2


def test_a_failed_job_is_its_own_sentence_and_the_sweep_goes_on(hopper_minari, data_dir, tmp_path, capsys):
    assert main(sweep(hopper_minari, data_dir, tmp_path, "learner.lr=1e-3,-1")) == 2
    output = capsys.readouterr()
    result = json.loads(output.out)
    assert result["failed"] == 2 and sum("summary" in job for job in result["jobs"]) == 2  # 2 seeds x 2 rates
    assert output.err.count("rlsft: error: learner.lr is out of range") == 2
    # a job that runs out of memory (10^12 trajectories a step) is its own sentence too, not hydra's traceback
    assert main(sweep(hopper_minari, data_dir, tmp_path / "big", "learner.batch_size=1000000000000")) == 2
    output = capsys.readouterr()
    assert json.loads(output.out)["failed"] == 2 and output.err.count("rlsft: error: Out of memory (") == 2


def test_a_jobs_config_value_that_cannot_be_resolved_is_its_own_sentence(
    hopper_minari, data_dir, tmp_path, capsys, monkeypatch
):
    """OmegaConf's resolver errors once escaped the job: hydra's traceback ended the sweep, without its JSON."""
    monkeypatch.delenv("RLSFT_UNSET", raising=False)
    assert main(sweep(hopper_minari, data_dir, tmp_path, "learner.steps=4,${oc.env:RLSFT_UNSET}")) == 2
    output = capsys.readouterr()
    result = json.loads(output.out)
    assert result["failed"] == 2 and sum("summary" in job for job in result["jobs"]) == 2  # 2 seeds x 2 steps
    assert output.err.count("rlsft: error: Bad config value (") == 2 and "'RLSFT_UNSET' not found" in output.err
    # a resolver's own sentence (PPO's steps are sized by its rollout), as without -m
    argv = ["train", "-m", "algorithm=ppo", "seed=0,1", "algorithm.rollout.num_envs=0", "progress=false",
            f"run_dir={tmp_path}/ppo/seed${{seed}}", f"hydra.sweep.dir={tmp_path}/ppo-sweep"]  # fmt: skip
    assert main(argv) == 2
    output = capsys.readouterr()
    assert json.loads(output.out)["failed"] == 2 and "Traceback" not in output.err
    assert output.err.count("rlsft: error: algorithm.rollout.num_envs=0 must be positive") == 2


def test_a_sweep_into_a_used_folder_reports_its_own_jobs(hopper_minari, data_dir, tmp_path, capsys):
    """The bench sweeps a task's unfinished seeds into one folder: a seed that failed once, then trained, was
    still reported failed, from the earlier sweep's result.json."""
    assert main(sweep(hopper_minari, data_dir, tmp_path, "learner.lr=-1,1e-3")) == 2
    assert json.loads(capsys.readouterr().out)["failed"] == 2
    assert main(sweep(hopper_minari, data_dir, tmp_path, "learner.lr=1e-3")) == 0
    result = jobs(capsys)
    assert result["failed"] == 0 and [job["summary"]["steps"] for job in result["jobs"]] == [4, 4]
    assert all(set(job) == {"summary", "overrides"} for job in result["jobs"])


def test_sweep_mistakes_are_one_sentence_before_anything_runs(hopper_minari, data_dir, tmp_path, capsys):
    assert main(sweep(hopper_minari, data_dir, tmp_path, "algorithm=bc,iwsft")) == 2
    assert "Unknown algorithm 'iwsft' (did you mean iw_sft?)" in capsys.readouterr().err
    assert main(sweep(hopper_minari, data_dir, tmp_path, "learner.lrr=1,2")) == 2
    assert "did you mean learner.lr?" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("kind, key", [("job", "learner"), ("all", "hydra"), ("hydra", "hydra")])
def test_cfg_prints_as_in_any_hydra_app(kind, key, capsys):
    assert main(["train", "--cfg", kind, "algorithm=sft"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert key in printed and (kind == "hydra" or printed["algorithm"]["name"] == "sft")
