"""docs/extending.md's worked examples, written out and run exactly as the page shows them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rlsft.cli import main

PAGE = Path(__file__).parents[1] / "docs" / "extending.md"
FILE_BLOCK = re.compile(r"```\w+ file=(\S+)\n(.*?)```", re.S)


def write_blocks(folder: Path) -> None:
    """The page's files, under the names its code blocks give them."""
    blocks = FILE_BLOCK.findall(PAGE.read_text())
    assert len(blocks) == 7  # the control env's YAML; one file and one YAML each for the task, verifier, algorithm
    for name, text in blocks:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def test_the_extending_page_adds_a_control_environment_and_its_algorithm_trains_there(tmp_path, monkeypatch):
    write_blocks(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    common = [f"hydra.searchpath=[file://{tmp_path / 'my_extensions' / 'configs'}]", f"data_dir={tmp_path / 'data'}"]
    ppo = tmp_path / "ppo"
    assert main(["train", "env=inverted_pendulum", "algorithm=ppo", *common, f"run_dir={ppo}",
                 "algorithm.rollout.frames=512", "algorithm.rollout.num_envs=2", "algorithm.rollout.frames_per_env=128",
                 "algorithm.rollout.epochs=1", "algorithm.rollout.minibatches=2", "evaluation.episodes=2",
                 "progress=false"]) == 0  # fmt: skip
    assert json.loads((ppo / "summary.json").read_text())["env"] == "InvertedPendulum-v5"
    assert main(["data", "make", "env=inverted_pendulum", "kind=random", "steps=3000", *common]) == 0
    bc = tmp_path / "bc"
    assert main(["train", "env=inverted_pendulum", "algorithm=bc", "data=rlsft/inverted_pendulum/random-s3000-v0",
                 *common, f"run_dir={bc}", "learner.steps=3", "evaluation.episodes=2", "progress=false"]) == 0  # fmt: skip
    summary = json.loads((bc / "summary.json").read_text())
    assert summary["steps"] == 3  # and the score is anchored by the YAML's returns:
    assert abs(summary["normalized_score"] - 100 * (summary["return_mean"] - 5.1) / (1000.0 - 5.1)) < 1e-3
    ranked = tmp_path / "rank_weighted"  # the page's algorithm, the same two files as on text below
    assert main(["train", "env=inverted_pendulum", "algorithm=rank_weighted", "data=rlsft/inverted_pendulum/random-s3000-v0",
                 "imports=[my_extensions.rank_weighted]", *common, f"run_dir={ranked}", "learner.steps=3", "evaluation.episodes=2",
                 "log_every=1", "progress=false"]) == 0  # fmt: skip
    summary = json.loads((ranked / "summary.json").read_text())
    assert summary["algorithm"] == "rank_weighted" and summary["trajectories_kept"] == summary["trajectories_total"]
    config = (ranked / "config.yaml").read_text()  # the control values: BC's learner from scratch, a trajectory mean
    assert "power: 2.0" in config and "reduction: trajectory_mean" in config and "lr: 0.001" in config
    assert "weight_max" in (ranked / "train.csv").read_text().splitlines()[0]


def test_the_extending_page_adds_a_task_a_verifier_and_an_algorithm(tmp_path, monkeypatch):
    write_blocks(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    run_dir = tmp_path / "run"
    command = [
        "train", "env=times_table", "algorithm=rank_weighted",
        "imports=[my_extensions.times_table,my_extensions.exact_string,my_extensions.rank_weighted]",
        f"hydra.searchpath=[file://{tmp_path / 'my_extensions' / 'configs'}]",
        f"data_dir={tmp_path / 'data'}", f"run_dir={run_dir}", "sampling.samples_per_prompt=1",
        "learner.steps=3", "evaluation.episodes=8", "evaluation.every=0", "log_every=1", "progress=false",
    ]  # fmt: skip
    assert main(command) == 0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["algorithm"] == "rank_weighted" and summary["env"] == "times_table" and summary["steps"] == 3
    assert (
        summary["completions_kept"] == summary["completions_total"] == 121 - 24
    )  # 11 x 11 pairs, 24 held out; curation by none keeps all
    assert 0 <= summary["accuracy"] <= 1
    config = (run_dir / "config.yaml").read_text()  # the text values, from the same YAML
    assert "power: 1.0" in config and "reduction: token_mean" in config and "optimizer: adamw" in config
    assert "weight_max" in (run_dir / "train.csv").read_text().splitlines()[0]


def test_an_algorithm_yaml_without_curation_trains_on_its_domains_curated_data(tmp_path):
    """What curated means is the domain's: a new SFT-family YAML names none and gets the verifier's verdict on
    text and the 90th return percentile on control (no per-domain file); per-domain options resolve the same way."""
    from omegaconf import OmegaConf

    from rlsft.configs.compose import compose_config
    from rlsft.errors import rlsft_cause

    (tmp_path / "algorithm").mkdir()
    (tmp_path / "algorithm" / "my_sft.yaml").write_text(
        'name: my_sft\noptions:\n  reduction: ${domain.reduction}\n  scale: "${rlsft.per_domain:{control: 2.0}}"\n'
    )
    search = f"hydra.searchpath=[file://{tmp_path}]"
    control = compose_config("train", ["algorithm=my_sft", "env=hopper", search])
    text = compose_config("train", ["algorithm=my_sft", "env=arithmetic", search])
    assert OmegaConf.to_container(control.algorithm.curation, resolve=True) == {"by": "quantile", "levels": [0.9]}
    assert OmegaConf.to_container(text.algorithm.curation, resolve=True) == {"by": "threshold", "levels": [1.0]}
    assert control.algorithm.options.reduction == "trajectory_mean" and text.algorithm.options.reduction == "token_mean"
    assert control.algorithm.options.scale == 2.0
    try:
        text.algorithm.options.scale
    except Exception as error:  # OmegaConf wraps the resolver's sentence
        assert "for the ['control'] domains only, not text; set it." in str(rlsft_cause(error))
    else:
        raise AssertionError("a domain without a value must be an error")
    overridden = compose_config(
        "train", ["algorithm=my_sft", "env=arithmetic", search, "algorithm.curation.levels=[0.5]"]
    )
    assert OmegaConf.to_container(overridden.algorithm.curation, resolve=True) == {"by": "threshold", "levels": [0.5]}
