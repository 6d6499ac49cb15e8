"""The shipped behaviour policies of each dataset version, side by side: how strong the data they record are.

For every env and version (rlsft/behaviour/v<N>/<env>/record.json, written by `rlsft data policies`): the
algorithm and budget that trained them, the expert's and the medium snapshot's returns with sampled actions
(what the datasets record) and the expert's deterministic return, each also D4RL-normalised. Issue 15 picks
v1's policies per env as the stronger of PPO's and SAC's by the expert's sampled return; this table is
where that choice is read.

    python benchmarks/behaviour_policies.py            # writes benchmarks/results/behaviour_policies.md
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

from hydra import compose, initialize_config_module

from rlsft.data.making import VERSIONS, behaviour_record, policy_folder
from rlsft.envs.control import ControlEnv, normalized_score

REPOSITORY = Path(__file__).resolve().parents[1]


def budget(training: dict) -> str:
    """What trained the policies: the algorithm and its env frames."""
    frames = (training.get("rollout") or training.get("replay") or {}).get("frames")
    return f"{training['name']}, {frames / 1e6:g}M frames" if frames else training["name"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["hopper", "halfcheetah", "walker2d"])
    parser.add_argument("--out", type=Path, default=REPOSITORY / "benchmarks/results/behaviour_policies.md")
    args = parser.parse_args()
    lines = [
        "# Behaviour policies of the datasets' versions",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        "- command: `python benchmarks/behaviour_policies.py`",
        "- returns of one policy's training episodes (sampled actions, as the datasets record them) and of its"
        " deterministic evaluation; in brackets, D4RL-normalised",
        "",
        "| env | version | trained by | expert, sampled | expert, deterministic | medium, sampled |"
        " medium at gradient step |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for env in args.envs:
        with initialize_config_module("rlsft.configs", version_base="1.3"):
            config = ControlEnv.from_config(compose("data", overrides=[f"env={env}"]).env)

        def score(value: float) -> str:
            normalised = normalized_score(value, config.ref_min_score, config.ref_max_score)
            return f"{value:.0f} ({normalised:.1f})"

        for version in VERSIONS:
            if not (policy_folder(version) / env / "record.json").exists():
                lines.append(f"| {env} | {version} | not shipped | | | | |")
                continue
            record = behaviour_record(env, policy_folder(version))
            lines.append(
                f"| {env} | {version} | {budget(record['training'])} | {score(record['expert_return'])} |"
                f" {score(record['expert_deterministic_return'])} | {score(record['medium_return'])} |"
                f" {record['medium_step']} |"
            )
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
