"""Return statistics of the datasets `rlsft data make` writes, to set beside D4RL's.

For each env and kind: episodes, steps, mean/min/max undiscounted return and the mean
D4RL-normalised score. Datasets are made on first use (`--steps` per dataset; D4RL's are
1M, medium-replay's is what the behaviour agent saw until medium). --version picks the datasets'
version (0: PPO behaviour policies; later ones: the stronger of PPO and SAC per env, as README's Datasets says).
Beside each row: the episodes in D4RL's v2 dataset of that env and kind, as the TFDS catalog
publishes them (TFDS gives no returns; on hopper and walker2d, whose episodes end when the agent
falls, episodes per step are a measure of the behaviour policy's strength).

    python benchmarks/dataset_stats.py --steps 1000000 [--version 1]
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from pathlib import Path

from hydra import compose, initialize_config_module

from rlsft.data import load_dataset
from rlsft.data.making import KINDS, make_dataset
from rlsft.envs.control import ControlEnv, normalized_score

# The 'train' split's examples (one an episode) of d4rl_mujoco_<env>/v2-<kind> in TFDS 1.2.0's catalog:
# docs/catalog/d4rl_mujoco_{hopper,walker2d,halfcheetah}.md in tensorflow/datasets (the same counts in hopper's
# page at commit 57fd938 and the others' at d298f4b). D4RL's random, medium and expert hold 1M steps each (its
# paper); medium-expert is medium and expert together (its counts are their sums, within one episode cut at
# the seam); medium-replay is the replay buffer until medium.
D4RL_V2_EPISODES = {
    "hopper": {"random": 45240, "medium": 2187, "expert": 1028, "medium-replay": 2041, "medium-expert": 3214},
    "walker2d": {"random": 48908, "medium": 1191, "expert": 1001, "medium-replay": 1093, "medium-expert": 2191},
    "halfcheetah": {"random": 1000, "medium": 1000, "expert": 1000, "medium-replay": 202, "medium-expert": 2000},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", nargs="+", default=["hopper", "halfcheetah", "walker2d"])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS))
    parser.add_argument("--steps", type=int, default=None, help="steps per dataset (default: rlsft's defaults)")
    parser.add_argument("--version", type=int, default=0, help="the datasets' version (rlsft/<env>/<kind>-v<N>)")
    parser.add_argument("--data-dir", default="~/.cache/rlsft")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/dataset_stats.md"))
    args = parser.parse_args()

    lines = [
        "# Datasets made by `rlsft data make`",
        "",
        f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        "",
        "| dataset | episodes | steps | return mean | min | max | normalised score | D4RL v2's episodes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for env in args.envs:
        with initialize_config_module("rlsft.configs", version_base="1.3"):
            env_cfg = ControlEnv.from_config(compose("data", overrides=[f"env={env}"]).env)
        for kind in args.kinds:
            ident = make_dataset(env_cfg, kind, args.steps, args.data_dir, version=args.version)
            dataset = load_dataset(ident, args.data_dir)
            returns = dataset.trajectories["return"]
            score = normalized_score(returns, dataset.ref_min_score, dataset.ref_max_score).mean()
            d4rl_episodes = D4RL_V2_EPISODES.get(env, {}).get(kind, "")  # none for an env D4RL lacks (ant)
            lines.append(
                f"| {ident} | {len(returns)} | {int(dataset.trajectories['mask'].sum())} | {returns.mean():.1f} |"
                f" {returns.min():.1f} | {returns.max():.1f} | {score:.1f} | {d4rl_episodes} |"
            )
            print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
