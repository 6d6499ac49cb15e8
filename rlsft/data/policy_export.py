"""`rlsft data policies`: a finished PPO or SAC run's policies shipped as a dataset version's behaviour policies.

Of several runs (PPO's and SAC's, or SAC's seeds), the one whose final policy records the strongest expert data
ships. The run's final policy is the expert, the snapshot whose sampled return is closest to a third of the expert's is
medium, and the snapshots from step 0 to medium are medium-replay's; rlsft.data.making records the datasets
from them (rlsft/behaviour/v<N>/<env>/: the policies that act, and record.json, which says where they came from).
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from omegaconf import OmegaConf

from rlsft import checkpoint
from rlsft.data.load import load_dataset
from rlsft.data.making import make_dataset
from rlsft.envs.control import ControlEnv
from rlsft.errors import RLSFTError


def run_snapshots(run_dir: Path) -> list[dict]:
    """The run's snapshots in step order, refused unless there are two or more from step 0 on."""
    snapshots = [checkpoint.load(path) for path in sorted((run_dir / "snapshots").glob("step*.pt"))]
    if len(snapshots) < 2 or snapshots[0]["step"] != 0:
        raise RLSFTError(
            f"{run_dir} lacks snapshots from step 0 on; train PPO or SAC with evaluation.every=N"
            " evaluation.snapshots=true."
        )
    return snapshots


def logged_returns(train_csv: Path) -> list[tuple[int, float]]:
    """(step, episode_return) of each train.csv row that logged finished training episodes."""
    with train_csv.open() as file:
        return [
            (int(row["step"]), float(row["episode_return"]))
            for row in csv.DictReader(file)
            if row.get("episode_return")
        ]


def sampled_return(logged: list[tuple[int, float]], step: int, window: int = 5) -> float:
    """The mean of the last `window` returns logged at or before `step` (-inf if none): the return with
    sampled actions, as the datasets will hold them."""
    recent = [value for logged_step, value in logged if logged_step <= step][-window:]
    return sum(recent) / len(recent) if recent else float("-inf")


def medium_index(snapshots: list[dict], logged: list[tuple[int, float]], expert_return: float) -> int:
    """The snapshot after step 0 whose sampled return is closest to a third of the expert's."""
    return min(
        range(1, len(snapshots)), key=lambda i: abs(sampled_return(logged, snapshots[i]["step"]) - expert_return / 3)
    )


def replay_frames(steps: list[int], frames_per_step: float) -> list[int]:
    """Frames to roll out each replay snapshot (at `steps`) for: the frames collected between two snapshots
    come half from the one before, half from the one after, the policy's progress between them taken as linear."""
    frames = []
    for index, step in enumerate(steps):
        before = step - steps[index - 1] if index > 0 else 0
        after = steps[index + 1] - step if index < len(steps) - 1 else 0
        frames.append(round((before + after) / 2 * frames_per_step))
    return frames


def acting_policy(policy: dict) -> tuple[dict, Callable[[dict], dict]]:
    """The config of the policy that acts in a run of `policy` (a config), and what takes its state out of the
    run's: PPO's actor-critic acts through its actor, a Gaussian MLP on running-normalised observations;
    any other policy acts itself."""
    if policy["name"] != "actor_critic":
        return policy, lambda state: state
    keys = ("hidden_sizes", "activation", "log_std_min", "log_std_max")
    actor = {"name": "gaussian_mlp", **{key: policy[key] for key in keys}, "normalize_observations": True}
    return actor, lambda state: {k.removeprefix("actor."): v for k, v in state.items() if k.startswith("actor.")}


def write_policies(folder: Path, policies: dict[str, dict], record: dict) -> None:
    """Replaces `folder` with `policies` (state dicts named `expert`, `medium`, `replay/000`, ...) and `record`,
    written beside it first: a write that fails leaves the policies it had."""
    written, replaced = folder.with_name(f"{folder.name}.writing"), folder.with_name(f"{folder.name}.replaced")
    for stale in (written, replaced):
        shutil.rmtree(stale, ignore_errors=True)
    (written / "replay").mkdir(parents=True)
    for name, state in policies.items():
        checkpoint.save_atomic({"policy": state}, written / f"{name}.pt")
    (written / "record.json").write_text(json.dumps(record, indent=2))
    if folder.exists():
        folder.rename(replaced)
    written.rename(folder)
    shutil.rmtree(replaced, ignore_errors=True)


def finished_run(run_dir: str | Path | None, env_name: str) -> tuple[Path, dict]:
    """The folder and final checkpoint of a finished online training run (PPO or SAC, whose train.csv logs frames
    and the returns of its training episodes) of env `env_name`, else one sentence."""
    fix = "pass run_dir=<a finished PPO or SAC run of that env, trained with evaluation.snapshots=true>"
    if run_dir is None:
        raise RLSFTError(f"rlsft data policies needs the run to ship the policies of; {fix}.")
    run_dir = Path(run_dir).expanduser()
    missing = [name for name in ("checkpoint.pt", "train.csv", "summary.json") if not (run_dir / name).is_file()]
    if missing:
        raise RLSFTError(f"{run_dir} is not a finished rlsft run (it has no {' or '.join(missing)}); {fix}.")
    final = checkpoint.load(run_dir / "checkpoint.pt")
    trained_in = OmegaConf.create(final["config"]).env.get("name")
    if trained_in != env_name:
        raise RLSFTError(
            f"{run_dir} was trained in env {trained_in!r}, not {env_name!r}; {fix}, or set env={trained_in}."
        )
    with (run_dir / "train.csv").open() as file:  # the frames and returns of the training episodes pick medium
        rows = list(csv.DictReader(file))
    if not rows or not rows[-1].get("frames") or not any(row.get("episode_return") for row in rows):
        algorithm = OmegaConf.create(final["config"]).algorithm.get("name")
        raise RLSFTError(
            f"{run_dir} is a {algorithm} run, whose train.csv logs no frames or no episode_return of training"
            f" episodes; {fix}."
        )
    return run_dir, final


def expert_data(final: dict, observation_dim: int, action_dim: int, steps: int) -> dict:
    """The expert dataset a finished run's final policy records (`rlsft data make kind=expert steps=<steps>` with
    it as the expert, made in a scratch folder): its episodes' mean return and their count."""
    config = OmegaConf.create(final["config"])
    acting, acting_state = acting_policy(OmegaConf.to_container(config.policy))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "policies"
        shape = {"observation_dim": observation_dim, "action_dim": action_dim, "policy": acting}
        write_policies(root / config.env.name, {"expert": acting_state(final["learner"]["policy"])}, shape)
        ident = make_dataset(ControlEnv.from_config(config.env), "expert", steps, scratch, policy_root=root)
        returns = load_dataset(ident, scratch).trajectories["return"]
    return {"expert_data_return": returns.mean().item(), "episodes": len(returns)}


def strongest_run(
    runs: list[tuple[Path, dict]], observation_dim: int, action_dim: int, steps: int
) -> tuple[Path, dict, list[dict]]:
    """Of finished runs (`finished_run`'s folder and final checkpoint each), the one whose final policy records
    the strongest expert data (`expert_data`, `steps` steps each), and each candidate's numbers (one run: none)."""
    if len(runs) == 1:
        return *runs[0], []
    candidates = []
    for run_dir, final in runs:
        config = OmegaConf.create(final["config"])
        measured = expert_data(final, observation_dim, action_dim, steps)
        candidates.append(
            {"run_dir": str(run_dir), "algorithm": config.algorithm.name, "seed": config.seed, **measured}
        )
    best = max(range(len(runs)), key=lambda index: candidates[index]["expert_data_return"])
    return *runs[best], candidates


def export_policies(
    run_dir: str | Path | list[str | Path] | None,
    env_name: str,
    observation_dim: int,
    action_dim: int,
    command: str,
    root: Path,
    replay_snapshots: int = 16,
    replace: bool = False,
    choose_steps: int = 100_000,
) -> dict:
    """Pick expert (final) and medium (a third of its return) from a PPO or SAC run and ship the policies that act.

    Of several runs (`run_dir` a list), the one whose final policy records the strongest expert data ships
    (`strongest_run`: each expert rolled out for `choose_steps` steps with sampled actions, as the datasets record
    them); the record lists every candidate's numbers.

    Returns are those of sampled actions, which is how the datasets are recorded (D4RL's
    medium policies likewise reach a third of the expert's return as sampled): the training
    episodes logged just before each snapshot, and the last ones for the expert.

    medium-replay's record is what the agent saw until it reached medium: the snapshots from
    the untrained policy (step 0) to medium, each rolled out for half the frames collected
    in the interval before it and half of those in the interval after it. At most `replay_snapshots` of them
    ship, evenly spaced from step 0 to medium (a run that snapshots every 2000 steps would ship a hundred).
    Policies shipped before for the env are replaced only with `replace`: a version's datasets are made from them.
    """
    if replay_snapshots < 2:
        raise RLSFTError(f"replay_snapshots={replay_snapshots} must be 2 or more: step 0 and medium; fix the override.")
    if choose_steps < 1:
        raise RLSFTError(
            f"choose_steps={choose_steps} must be positive: the steps each run's expert is rolled out for."
        )
    if run_dir == []:
        raise RLSFTError("run_dir=[] names no run; pass run_dir=<run> or run_dir=[<run>,<run>,...].")
    runs = [finished_run(path, env_name) for path in (run_dir if isinstance(run_dir, list) else [run_dir])]
    if (root / env_name).exists() and not replace:
        raise RLSFTError(
            f"{root / env_name} holds the {env_name} policies that this version's datasets are made from; pass"
            " replace=true to replace them with this run's."
        )
    run_dir, final, candidates = strongest_run(runs, observation_dim, action_dim, choose_steps)
    snapshots = run_snapshots(run_dir)
    logged = logged_returns(run_dir / "train.csv")
    expert_return = sampled_return(logged, logged[-1][0])
    medium = medium_index(snapshots, logged, expert_return)
    kept = min(medium + 1, replay_snapshots)
    replay = [snapshots[round(index * medium / (kept - 1))] for index in range(kept)]
    config = OmegaConf.to_container(OmegaConf.create(final["config"]))
    with (run_dir / "train.csv").open() as file:  # the frames collected by the last step: rollouts, or SAC's steps
        last = list(csv.DictReader(file))[-1]
    frames_per_step = float(last["frames"]) / int(last["step"])
    acting, acting_state = acting_policy(config["policy"])
    record = {
        "observation_dim": observation_dim,
        "action_dim": action_dim,
        "policy": acting,
        "expert_return": expert_return,  # sampled actions (training episodes)
        "medium_return": sampled_return(logged, snapshots[medium]["step"]),
        "expert_deterministic_return": json.loads((run_dir / "summary.json").read_text())["return_mean"],
        "medium_deterministic_return": snapshots[medium]["eval"]["return_mean"],
        "medium_step": snapshots[medium]["step"],
        "replay": [f"replay/{index:03d}" for index in range(len(replay))],
        "replay_frames": replay_frames([snapshot["step"] for snapshot in replay], frames_per_step),
        "command": command,
        "training": {"env": config["env"]["id"], "seed": config["seed"], **config["algorithm"]},
    }
    if candidates:
        record["chosen_from"] = {"steps": choose_steps, "runs": candidates}
    policies = {"expert": final["learner"]["policy"], "medium": snapshots[medium]["policy"]}
    policies |= {name: snapshot["policy"] for name, snapshot in zip(record["replay"], replay, strict=True)}
    policies = {name: acting_state(state) for name, state in policies.items()}
    write_policies(root / env_name, policies, record)
    return record
