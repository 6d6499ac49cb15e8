"""End to end through `rlsft train` / `rlsft evaluate` on a dataset recorded in MuJoCo."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch
from conftest import small_run, write_d4rl_file

from rlsft import checkpoint
from rlsft.algorithms import Algorithm
from rlsft.cli import main

# Every registered algorithm that trains on control datasets (a new one is tested here without listing it).
ALGORITHMS = sorted(name for name, a in Algorithm.registry.items() if "control" in a.domains and a.source == "dataset")


def test_the_cli_prints_results_without_torchrl_info_logs(hopper_minari, data_dir, tmp_path):
    argv = small_run(hopper_minari, data_dir, tmp_path / "run", "algorithm=bc", "learner.steps=2")
    environment = {key: value for key, value in os.environ.items() if key != "RL_LOGGING_LEVEL"}
    run = subprocess.run(
        [sys.executable, "-c", "import sys; from rlsft.cli import main; sys.exit(main(sys.argv[1:]))", *argv],
        capture_output=True, text=True, env=environment, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["steps"] == 2
    assert "[torchrl][INFO]" not in run.stderr  # a replay buffer was built: torchrl logs that at INFO


def train_rows(run_dir: Path) -> list[dict]:
    with (run_dir / "train.csv").open() as file:
        return list(csv.DictReader(file))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_each_algorithm_trains_checkpoints_and_resumes(algorithm, hopper_minari, data_dir, tmp_path, capsys):
    run_dir = tmp_path / algorithm
    assert main(small_run(hopper_minari, data_dir, run_dir, f"algorithm={algorithm}", "learner.steps=20")) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps"] == 20 and summary["algorithm"] == algorithm
    assert torch.isfinite(torch.tensor(summary["normalized_score"]))
    state = checkpoint.load(run_dir / "checkpoint.pt")
    assert state["learner"]["step"] == 20

    assert main(small_run(hopper_minari, data_dir, run_dir, f"algorithm={algorithm}", "learner.steps=30")) == 0
    assert checkpoint.load(run_dir / "checkpoint.pt")["learner"]["step"] == 30
    steps = [int(row["step"]) for row in train_rows(run_dir)]
    assert steps == [5, 10, 15, 20, 25, 30]  # resumed at 20, no row lost or repeated
    with (run_dir / "eval.csv").open() as file:  # the policy it starts from is evaluated at step 0
        assert [int(row["step"]) for row in csv.DictReader(file)] == [0, 20, 30]
    if algorithm.startswith("iw_sft"):
        assert {"weight_mean", "weight_min", "weight_max", "weight_ess"} <= set(train_rows(run_dir)[0])
    capsys.readouterr()

    assert main(["evaluate", f"checkpoint={run_dir / 'checkpoint.pt'}", "episodes=2"]) == 0
    evaluation = json.loads(capsys.readouterr().out)
    assert evaluation["step"] == 30 and evaluation["episodes"] == 2


def test_resume_is_exact(hopper_minari, data_dir, tmp_path):
    """20 steps, stop, 20 more == 40 steps straight (iw-SFT: EMA q, sampling RNG and all)."""
    constant = ["algorithm=iw_sft_q", "learner.schedule=constant", "learner.warmup_steps=0"]
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert main(small_run(hopper_minari, data_dir, straight, *constant, "learner.steps=40")) == 0
    assert main(small_run(hopper_minari, data_dir, resumed, *constant, "learner.steps=20")) == 0
    assert main(small_run(hopper_minari, data_dir, resumed, *constant, "learner.steps=40")) == 0
    a = checkpoint.load(straight / "checkpoint.pt")["learner"]
    b = checkpoint.load(resumed / "checkpoint.pt")["learner"]
    for key in ("policy", "algorithm"):
        for name, tensor in a[key].items():
            assert torch.equal(tensor, b[key][name]), f"{key}.{name} differs after resume"

    def without_time(rows: list[dict]) -> list[dict]:  # wall-clock differs from run to run
        return [{key: value for key, value in row.items() if key != "seconds"} for row in rows]

    assert without_time(train_rows(straight)) == without_time(train_rows(resumed))


def error_of(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("rlsft: error: ") and "\n" not in message and "Traceback" not in message
    return message


def test_user_errors_are_one_sentence(hopper_minari, data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    assert "Unknown algorithm 'ppo2'" in error_of(small_run(hopper_minari, data_dir, run, "algorithm=ppo2"), capsys)
    assert "Unknown env 'hoppr'" in error_of(small_run(hopper_minari, data_dir, run, "env=hoppr"), capsys)
    assert "Unknown config key 'learner.lrr' (did you mean learner.lr?)" in error_of(
        small_run(hopper_minari, data_dir, run, "learner.lrr=1"), capsys
    )
    assert "(did you mean algorithm.options.alpha?)" in error_of(
        small_run(hopper_minari, data_dir, run, "algorithm.options.alpah=3"), capsys
    )
    assert "Unknown algorithm 'iwsft' (did you mean iw_sft?)" in error_of(
        small_run(hopper_minari, data_dir, run, "algorithm=iwsft"), capsys
    )
    assert "learner.lr is out of range" in error_of(small_run(hopper_minari, data_dir, run, "learner.lr=-1"), capsys)
    assert "could not be converted to Float" in error_of(
        small_run(hopper_minari, data_dir, run, "learner.lr=fast"), capsys
    )
    assert "actions of dim 3" in error_of(small_run(hopper_minari, data_dir, run, "env=halfcheetah"), capsys)
    assert "keeps none of 40" in error_of(
        small_run(hopper_minari, data_dir, run, "algorithm=sft", "algorithm.curation.by=threshold",
                  "algorithm.curation.levels=[1e9]"),
        capsys,
    )  # fmt: skip
    assert "No dataset given" in error_of(["train", f"run_dir={run}", "data=null"], capsys)
    assert "No behaviour policies ship in v0 for env 'ant'" in error_of(
        ["train", "env=ant", f"run_dir={run}", f"data_dir={data_dir}", "data=rlsft/ant/medium-v0"], capsys
    )
    assert "Unknown dataset kind 'great'" in error_of(["data", "make", "kind=great", f"data_dir={data_dir}"], capsys)
    assert "does not exist" in error_of(["evaluate", f"checkpoint={tmp_path / 'none.pt'}"], capsys)
    # a group choice the command's config lacks (the checkpoint names the env) was hydra's traceback
    assert "`rlsft evaluate` takes no env= choice" in error_of(["evaluate", "checkpoint=x.pt", "env=walker2d"], capsys)
    done = tmp_path / "done"
    assert main(small_run(hopper_minari, data_dir, done, "algorithm=bc", "learner.steps=5")) == 0
    assert "another run ('bc on" in error_of(small_run(hopper_minari, data_dir, done, "algorithm=sft"), capsys)
    assert "resume=false" in error_of(small_run(hopper_minari, data_dir, done, "algorithm=bc", "resume=false"), capsys)
    assert "policy.hidden_sizes: [256, 256, 256] there, [8] here" in error_of(
        small_run(hopper_minari, data_dir, done, "algorithm=bc", "learner.steps=10", "policy.hidden_sizes=[8]"), capsys
    )
    assert checkpoint.load(done / "checkpoint.pt")["learner"]["step"] == 5  # untouched
    state = checkpoint.load(done / "checkpoint.pt")  # as another rlsft version's model would have it
    state["learner"]["policy"].popitem()
    checkpoint.save_atomic(state, done / "checkpoint.pt")
    assert "does not fit this run" in error_of(
        small_run(hopper_minari, data_dir, done, "algorithm=bc", "learner.steps=10"), capsys
    )
    for setting, words in [("episodes=-1", "episodes=-1 is not a positive integer"),  # were tracebacks
                           ("episodes=abc", "episodes='abc' is not a positive integer"),
                           ("seed=-3", "seed=-3 is not an integer in [0, 2**32)")]:  # fmt: skip
        assert words in error_of(["evaluate", f"checkpoint={done}", setting], capsys)
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    assert "is corrupt or not an rlsft checkpoint" in error_of(
        ["evaluate", f"checkpoint={tmp_path / 'broken.pt'}"], capsys
    )


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["algorithm=iw_sft", "algorithm.options.alpha=abc"], "algorithm.options.alpha='abc' should be a number"),
        (["algorithm=iw_sft", "algorithm.options.ema_decay=2"], "ema_decay=2 must lie in [0, 1]"),
        (["algorithm=iw_sft", "algorithm.options.per_step_clip=[1]"], "per_step_clip=[1] needs two numbers"),
        (
            ["algorithm.options.reduction=token-mean"],
            "Unknown reduction 'token-mean' (did you mean token_mean?); set algorithm.options.reduction to one of",
        ),
        (["algorithm=iw_sft", "algorithm.options.reduction=foo"], "set algorithm.options.reduction to one of"),
        (
            ["algorithm=iw_sft", "algorithm.options.per_step_clip=[2,1]"],
            "The weight clip algorithm.options.per_step_clip=[2, 1] needs 0 <= low <= high",
        ),
        (["log_every=0"], "log_every, checkpoint_every"),
        (["evaluation.every=-1"], "evaluation.every not negative"),
        (["resume=maybe"], "'maybe' is not a valid bool"),
        (["seed=-1"], "seed=-1 is not an integer"),
        (["learner.device=tpu"], "learner.device='tpu' is not a device"),
        (["algorithm=sft", "reference.learner.steps=-1"], "reference.learner.steps (or epochs) is out of range"),
        (["learner.optimizer=sgd"], "learner.optimizer='sgd' is not one of ['adam', 'adamw']"),
        (["policy.hidden_sizes=[0]"], "holds a layer without units"),
        (["policy.log_std_min=3", "policy.log_std_max=-3"], "policy.log_std_min=3 must be below"),  # trained silently
        (["policy=tanh_gaussian", "policy.log_std_max=-5"], "policy.log_std_min=-5.0 must be below"),
        (["algorithm=sft", "algorithm.curation.levels=[abc]"], "must be numbers"),
        (["algorithm=sft", "algorithm.curation.levels=0.9"], "write algorithm.curation.levels=[0.9]"),  # traceback
        (["env.ref_max_score=abc"], "env.ref_max_score='abc' must be two different finite numbers"),  # traceback
        (["env.ref_max_score=-20.272305"], "must be two different finite numbers"),  # summary said Infinity
        (["algorithm=sft", "algorithm.rounds.every=-1"], "algorithm.rounds.every=-1 must be a whole number"),  # ran
        (["algorithm=sft", "algorithm.rounds.every=true"], "algorithm.rounds.every=True must be a whole number"),
        (["algorithm=iw_sft", "algorithm.options.alpha=-1"], "algorithm.options.alpha=-1 must not be negative"),  # ran
        (["run_dir=/proc/rlsft-run"], "Cannot read or write /proc/rlsft-run"),
        (["imports=abc"], "imports=abc must be a list of module names"),  # was "Cannot import 'a'"
        (["imports=[1]"], "imports=[1] must be a list of module names"),  # was a TypeError
        # 10^12 trajectories: the sampler's index alone is 8 TB, refused by any machine's allocator (was a traceback)
        (["learner.batch_size=1000000000000"], "Out of memory ("),
    ],
)
def test_bad_settings_are_one_sentence(overrides, words, hopper_minari, data_dir, tmp_path, capsys):
    argv = small_run(hopper_minari, data_dir, tmp_path / "run", "algorithm=bc", "learner.steps=2", *overrides)
    assert words in error_of(argv, capsys)


def test_bad_rollout_settings_are_one_sentence(tmp_path, capsys):
    ppo = ["train", "algorithm=ppo", f"run_dir={tmp_path / 'run'}", "progress=false"]
    assert "algorithm.rollout.gamma='abc' should be a number" in error_of([*ppo, "algorithm.rollout.gamma=abc"], capsys)
    for bad in ("num_envs=0", "frames_per_env=0", "epochs=0", "minibatches=0"):
        assert f"{bad} must be positive" in error_of([*ppo, f"algorithm.rollout.{bad}"], capsys)
    assert "at most half as many minibatches as" in error_of([*ppo, "algorithm.rollout.minibatches=5000"], capsys)
    one_step_each = [f"algorithm.rollout.{key}" for key in ("num_envs=1", "frames_per_env=4", "minibatches=4")]
    assert "two steps a minibatch at least" in error_of([*ppo, *one_step_each], capsys)  # its std was NaN: "lower lr"
    sac = ["train", "algorithm=sac", f"run_dir={tmp_path / 'sac'}", "progress=false"]
    for sizes in ("[-4]", "[0]"):  # torch's RuntimeError, torchrl's for 0
        bad = f"algorithm.options.critic_hidden_sizes={sizes}"
        assert f"critic_hidden_sizes={sizes} must be positive layer sizes" in error_of([*sac, bad], capsys)
    assert "learner.device=mps is not one rlsft trains on" in error_of([*ppo, "learner.device=mps"], capsys)
    for bad, words in [("clip_epsilon=-0.2", "clip_epsilon=-0.2 must be positive"),  # these trained silently
                       ("value_coef=-1", "value_coef=-1 and entropy_coef=0.0 not negative"),
                       ("entropy_coef=-0.01", "entropy_coef=-0.01 not negative")]:  # fmt: skip
        assert words in error_of([*ppo, f"algorithm.options.{bad}"], capsys)


def folder_contents(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def test_a_refused_run_leaves_its_folder_as_it_was(hopper_minari, data_dir, tmp_path, capsys):
    done = tmp_path / "done"
    assert main(small_run(hopper_minari, data_dir, done, "algorithm=bc", "learner.steps=5")) == 0
    before = folder_contents(done)
    for refused in (["algorithm=sft"], ["algorithm=bc", "resume=false"],
                    ["algorithm=bc", "learner.steps=10", "policy.hidden_sizes=[8]"]):  # fmt: skip
        error_of(small_run(hopper_minari, data_dir, done, *refused), capsys)
        assert folder_contents(done) == before, f"refused run {refused} changed the run folder"


def test_a_run_goes_on_only_with_its_own_settings(hopper_minari, data_dir, tmp_path, capsys):
    """Run again with another seed or rate, a finished run gave its old summary as this one's and its config.yaml
    took the new settings; its length, evaluation and logging may change."""
    run_dir = tmp_path / "run"
    assert main(small_run(hopper_minari, data_dir, run_dir, "algorithm=bc", "learner.steps=5")) == 0
    before = folder_contents(run_dir)
    error = error_of(small_run(hopper_minari, data_dir, run_dir, "algorithm=bc", "seed=7", "learner.lr=0.5"), capsys)
    assert "was trained with other settings (learner.lr: 0.001 there, 0.5 here; seed: 0 there, 7 here)" in error
    assert folder_contents(run_dir) == before
    longer = ["algorithm=bc", "learner.steps=10", "evaluation.episodes=1", "log_every=2", "progress=true"]
    assert main(small_run(hopper_minari, data_dir, run_dir, *longer)) == 0


def test_a_finished_run_run_again_gives_its_summary_and_trains_nothing(hopper_minari, data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    argv = small_run(hopper_minari, data_dir, run, "algorithm=bc", "learner.steps=5")
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    eval_rows, checkpoint_bytes = (run / "eval.csv").read_text(), (run / "checkpoint.pt").read_bytes()
    (run / ".checkpoint.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")  # what a kill mid-write leaves
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert (run / "eval.csv").read_text() == eval_rows and (run / "checkpoint.pt").read_bytes() == checkpoint_bytes
    assert not list(run.glob(".*.tmp"))


def test_a_nonfinite_loss_stops_the_run(hopper_minari, data_dir, tmp_path, capsys):
    """lr=1e30: the first step throws the weights to ~1e30, and every loss after it overflows."""
    run = tmp_path / "run"
    argv = small_run(hopper_minari, data_dir, run, "algorithm=bc", "learner.steps=6", "learner.lr=1e30",
                     "learner.warmup_steps=0", "checkpoint_every=1", "log_every=1")  # fmt: skip
    message = error_of(argv, capsys)
    assert "Step 2 of bc on test/hopper/random-v0" in message and "keeps step 1" in message
    assert checkpoint.load(run / "checkpoint.pt")["learner"]["step"] == 1
    assert not (run / "summary.json").exists()
    message = error_of([*argv, "learner.nonfinite=skip"], capsys)  # the overflowing policy is not evaluated
    assert "actions in Hopper-v5 are not finite" in message and not (run / "summary.json").exists()


def test_steps_with_a_nonfinite_loss_can_be_skipped(hopper_episodes, tmp_path, capsys):
    """One trajectory's action of 3e38 (finite in float32) makes the loss of each batch holding it
    overflow: those steps are left out and counted, the others train, and the score is finite."""
    path = write_d4rl_file(tmp_path / "huge-action.hdf5", hopper_episodes)
    with h5py.File(path, "r+") as file:
        file["actions"][3, 0] = 3e38
    run = tmp_path / "run"
    argv = small_run(str(path), tmp_path / "data", run, "algorithm=bc", "learner.steps=20", "log_every=1")
    assert "Step " in error_of(argv, capsys)  # learner.nonfinite=stop, the default
    shutil.rmtree(run)
    assert main([*argv, "learner.nonfinite=skip"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert math.isfinite(summary["normalized_score"])
    skipped = [float(row["nonfinite_steps"]) for row in train_rows(run)]
    assert skipped == sorted(skipped) and 0 < skipped[-1] < 20


def test_results_do_not_depend_on_caches(tmp_path, capsys):
    """The same command gives the same parameters whether its dataset and pi_ref are made in the
    run (a fresh data dir) or found made (a second run on the same data dir)."""
    data = "rlsft/hopper/medium-s2000-v0"
    runs = [tmp_path / "made", tmp_path / "cached"]
    for run in runs:
        argv = small_run(data, tmp_path / "data", run, "algorithm=iw_sft", "algorithm.curation.levels=[0.5]")
        assert main([*argv, "learner.steps=10"]) == 0
    made, cached = (checkpoint.load(run / "checkpoint.pt")["learner"]["policy"] for run in runs)
    for name, tensor in made.items():
        assert torch.equal(tensor, cached[name]), f"policy.{name} depends on the cache"


def test_pi_ref_is_cached_by_the_values_of_its_settings(hopper_minari, data_dir, tmp_path):
    """reference.learner's sizes are interpolations of the budget's: a pi_ref of another budget is another."""
    cached_before = set((data_dir / "references").glob("*"))  # the session's data dir: other tests' too
    for steps in (3, 7):
        argv = small_run(hopper_minari, data_dir, tmp_path / f"run{steps}", "algorithm=sft", "learner.steps=2")
        argv += ["reference.learner.steps=${budget.reference_steps}", f"budget.reference_steps={steps}"]
        assert main(argv) == 0
    folders = set((data_dir / "references").glob("*")) - cached_before
    last_steps = sorted(int(train_rows(folder)[-1]["step"]) for folder in folders)
    assert last_steps == [3, 7]


def test_a_checkpoint_whose_config_holds_an_interpolation_is_not_resolved(
    hopper_minari, data_dir, tmp_path, monkeypatch, capsys
):
    """A saved config is resolved; one with `${...}` was made by hand, and its resolver could import a module
    (rlsft.package_dir's find_spec imports a dotted name's parent): evaluate must not resolve it unasked."""
    run_dir = tmp_path / "run"
    assert main(small_run(hopper_minari, data_dir, run_dir, "algorithm=bc", "learner.steps=2")) == 0
    (tmp_path / "planted").mkdir()
    (tmp_path / "planted" / "__init__.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    state = checkpoint.load(run_dir / "checkpoint.pt")
    state["config"] = state["config"].replace("id: Hopper-v5", "id: ${rlsft.package_dir:planted.anything}")
    checkpoint.save_atomic(state, tmp_path / "crafted.pt")
    capsys.readouterr()
    assert main(["evaluate", f"checkpoint={tmp_path / 'crafted.pt'}", "episodes=1"]) == 2
    assert "(env.id=${rlsft.package_dir:planted.anything})" in capsys.readouterr().err
    assert not (tmp_path / "ran").exists()  # was imported: the planted module ran


@pytest.mark.parametrize("state", [{"w": torch.zeros(2)}, [torch.zeros(2)], {"config": "a: 1", "learner": {}}])
def test_evaluating_a_file_that_is_no_run_checkpoint_is_one_sentence(state, tmp_path, capsys):
    torch.save(state, tmp_path / "other.pt")  # a snapshot, a state dict: a KeyError or TypeError traceback
    assert main(["evaluate", f"checkpoint={tmp_path / 'other.pt'}"]) == 2
    assert "is not a checkpoint of `rlsft train` (a snapshot, or another file?)" in capsys.readouterr().err


def test_the_default_main_job_resolves(capsys) -> None:
    """`rlsft train` with no arguments: iw_sft_q on rlsft's Hopper medium-replay, a budget for this machine."""
    from omegaconf import OmegaConf

    from rlsft.cli import compose_config

    cfg = OmegaConf.to_container(compose_config("train", []), resolve=True)
    assert (cfg["algorithm"]["name"], cfg["env"]["id"], cfg["data"]) == (
        "iw_sft_q",
        "Hopper-v5",
        "rlsft/hopper/medium-replay-v0",
    )
    budget = "paper" if torch.cuda.is_available() else "cpu"
    expected_steps = {"paper": 2000, "cpu": 750}[budget]
    assert cfg["learner"]["steps"] == expected_steps and cfg["reference"]["learner"]["lr"] == 1e-3
    assert cfg["algorithm"]["options"]["alpha"] == 10.0 and cfg["algorithm"]["curation"]["levels"] == [0.9, 0.95, 0.98]
    assert main(["train", "--cfg"]) == 0 and "medium-replay" in capsys.readouterr().out
    assert main(["train", "--cfg", "job", "--resolve"]) == 0  # resolved in place: a per-domain list was a traceback
    assert OmegaConf.create(capsys.readouterr().out).algorithm.options.per_step_clip == [0.0, 2.0]
    # the commands that name an action or a suite first print the config that command composes
    assert main(["bench", "control", "size=quick", "--cfg"]) == 0 and "suite: control" in capsys.readouterr().out
    assert main(["data", "make", "env=walker2d", "--cfg"]) == 0 and "id: Walker2d-v5" in capsys.readouterr().out
    assert main(["bench", "contrl", "--cfg"]) == 2 and "(did you mean control?)" in capsys.readouterr().err
    assert main(["bench", "control", "sizes.quick.seed=3"]) == 2  # the hint names a command that exists
    assert "`rlsft bench control --cfg` lists the keys" in capsys.readouterr().err
    from rlsft.data.making import behaviour_record, policy_folder

    assert behaviour_record("hopper", policy_folder(0))[
        "replay"
    ]  # the policies that make its dataset ship in the package


# The quick settings of each registered algorithm that draws fresh rollouts: a new one fails until it has some.
ROLLOUT_RUNS = {
    "ppo": ["env=hopper", "algorithm.rollout.frames=256", "algorithm.rollout.num_envs=2",
            "algorithm.rollout.frames_per_env=64", "algorithm.rollout.epochs=1", "algorithm.rollout.minibatches=2",
            "evaluation.episodes=2", "env.max_episode_steps=50"],
    "grpo": ["env=arithmetic", "env.task.options.train_size=8", "env.task.options.test_size=4",
             "algorithm.rollout.prompts_per_batch=2", "algorithm.rollout.samples_per_prompt=2",
             "evaluation.episodes=4", "learner.steps=2"],
}  # fmt: skip


@pytest.mark.parametrize("algorithm", sorted(n for n, a in Algorithm.registry.items() if a.source == "rollouts"))
def test_each_rollout_algorithm_trains_and_evaluates_end_to_end(algorithm, tmp_path, capsys):
    if algorithm not in ROLLOUT_RUNS:
        pytest.fail(f"{algorithm} draws rollouts and has no quick settings in ROLLOUT_RUNS: add them to test it")
    run_dir = tmp_path / algorithm
    common = [f"algorithm={algorithm}", f"run_dir={run_dir}", f"data_dir={tmp_path / 'data'}", "progress=false"]
    assert main(["train", *common, "evaluation.every=0", "log_every=1", *ROLLOUT_RUNS[algorithm]]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (
        summary["algorithm"] == algorithm
        and summary["steps"] == checkpoint.load(run_dir / "checkpoint.pt")["learner"]["step"]
    )
    assert main(["evaluate", f"checkpoint={run_dir}", "episodes=2"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == summary["steps"]


def test_an_algorithm_reading_a_key_its_batches_lack_is_one_sentence(
    hopper_minari, data_dir, tmp_path, capsys, monkeypatch
):
    """The trainer checks the loss's in_keys against the batch source's keys before any step."""
    (tmp_path / "reads_advantage.py").write_text(
        "from rlsft.algorithms.bc import BC\n\n\nclass ReadsAdvantage(BC):\n"
        '    name = "reads_advantage"\n    in_keys = ("mask", "advantage")\n'
    )
    (tmp_path / "configs" / "algorithm").mkdir(parents=True)
    (tmp_path / "configs" / "algorithm" / "reads_advantage.yaml").write_text(
        "defaults:\n  - bc\n  - _self_\nname: reads_advantage\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dir = tmp_path / "run"
    argv = small_run(hopper_minari, data_dir, run_dir, "algorithm=reads_advantage", "imports=[reads_advantage]",
                     f"hydra.searchpath=[file://{tmp_path / 'configs'}]")  # fmt: skip
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("rlsft: error: reads_advantage reads ['advantage'] from each batch, and batches of")
    assert error.count("\n") == 0 and not run_dir.exists()
