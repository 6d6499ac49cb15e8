"""`rlsft train [key=value ...]`, `rlsft evaluate checkpoint=<path>`, `rlsft export checkpoint=<path> out=<folder>`,
`rlsft data make|policies ...`, `rlsft bench <suite> size=quick|full`.

Configs are composed with hydra from the YAML shipped in rlsft/configs; any key can be
overridden as `a.b=value`. Mistakes a user can fix print one sentence, not a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from rlsft import stopping
from rlsft.configs import default_budget
from rlsft.configs.compose import compose_config
from rlsft.errors import MISTAKES, STOPPED_STATUS, RLSFTError, RunStopped, did_you_mean, mistake, reason
from rlsft.sweep import check, hydra_app, multirun

if TYPE_CHECKING:  # the commands import what they run when they run
    from rlsft.experiments.base import Evaluate
    from rlsft.policies import Policy

# torchrl logs each replay-buffer allocation at INFO, to stdout; the CLI's output is its progress bars
# and results (JSON on stdout). torchrl reads its level from RL_LOGGING_LEVEL when first imported,
# so the default goes there (a user's own setting wins), and onto its logger if it is imported already.
os.environ.setdefault("RL_LOGGING_LEVEL", "WARNING")
logging.getLogger("torchrl").setLevel(os.environ["RL_LOGGING_LEVEL"])


def train_task(cfg: DictConfig) -> dict | None:
    from rlsft.trainer import train

    return train(cfg)


def run_train(overrides: list[str]) -> dict | None:
    return train_task(compose_config("train", overrides))


def code_named_in(train_cfg: DictConfig) -> str | None:
    """What a run's config names for its evaluation to import and call: an interpolation, which a saved config
    (resolved) never holds and whose resolver may import a module (rlsft.package_dir), or a user_callable
    verifier's function. Read unresolved: resolving is what must not happen."""
    from rlsft.loop import flat_settings

    leaves = flat_settings(OmegaConf.to_container(train_cfg, resolve=False)).items()
    if interpolation := next((f"{key}={value}" for key, value in leaves if "${" in str(value)), None):  # lists too
        return interpolation
    verifier = OmegaConf.select(train_cfg, "verifier")
    if OmegaConf.is_dict(verifier) and verifier.get("name") == "user_callable":
        return f"verifier.options.function={OmegaConf.select(verifier, 'options.function')}"
    return None


def trained_policy(checkpoint_path: str, seed: int, trust_code: bool) -> tuple[Path, dict, Policy, Evaluate]:
    """A run's checkpoint (its folder or .pt file): the path, its state, the policy with its trained weights
    and the policy's evaluation, as the run's domain makes them. A checkpoint holds no pickled objects, but its
    config may name a function to import and call: that is done only with `trust_code`."""
    from rlsft import checkpoint
    from rlsft.experiments import make_domain
    from rlsft.loop import CHECKPOINT

    path = Path(checkpoint_path).expanduser()
    if path.is_dir():  # a run folder: its checkpoint
        if not (path / CHECKPOINT).is_file():
            raise RLSFTError(
                f"{path} is a folder without a {CHECKPOINT}; pass a run folder of `rlsft train` or a .pt file."
            )
        path = path / CHECKPOINT
    state = checkpoint.load(path)
    learner = state.get("learner") if isinstance(state, dict) else None
    if not (isinstance(learner, dict) and "policy" in learner and isinstance(state.get("config"), str)):
        raise RLSFTError(
            f"{path} is not a checkpoint of `rlsft train` (a snapshot, or another file?); pass a run folder or"
            f" its {CHECKPOINT}."
        )
    train_cfg = OmegaConf.create(state["config"])
    if trust_code is not True and (code := code_named_in(train_cfg)):  # trust_code=yes is not a yes
        raise RLSFTError(
            f"{path} names code that its evaluation would import and call ({code}); pass trust_code=true only if"
            " you trust where the checkpoint came from."
        )
    policy, evaluate = make_domain(train_cfg).evaluated_policy(train_cfg, seed, state)
    policy.load_state_dict(state["learner"]["policy"])
    return path, state, policy, evaluate


def run_evaluate(overrides: list[str]) -> dict:
    from rlsft.checkpoint import checked_seed

    cfg = compose_config("evaluate", overrides)
    if isinstance(cfg.episodes, bool) or not isinstance(cfg.episodes, int) or cfg.episodes < 1:
        raise RLSFTError(f"episodes={cfg.episodes!r} is not a positive integer; pass episodes=<how many to evaluate>.")
    path, state, _, evaluate = trained_policy(cfg.checkpoint, checked_seed(cfg.seed), cfg.trust_code)
    metrics = evaluate(cfg.episodes)
    return {"checkpoint": str(path), "step": state["learner"]["step"], "episodes": cfg.episodes, **metrics}


def run_export(overrides: list[str]) -> dict:
    cfg = compose_config("export", overrides)
    out = Path(cfg.out).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise RLSFTError(f"out={out} already holds files; pass a new or empty folder, so that nothing is overwritten.")
    path, state, policy, _ = trained_policy(cfg.checkpoint, 0, cfg.trust_code)
    out.mkdir(parents=True, exist_ok=True)
    return {"checkpoint": str(path), "step": state["learner"]["step"], **policy.export(out)}


def composed(command: str, overrides: list[str]) -> tuple[str, list[str], DictConfig]:
    """The config `rlsft <command> ...` runs with (and `--cfg` prints): `data make k=v` and `bench control k=v`
    name an action or a suite before their overrides, a bench suite its own config. Returns that word ("" where
    none), the overrides after it and the composed config."""
    word, rest = ("", overrides)
    if command in ("data", "bench") and overrides and "=" not in overrides[0]:
        word, rest = overrides[0], overrides[1:]
    name = command
    if command == "bench":
        from rlsft.bench import SUITES

        if word not in SUITES:
            raise RLSFTError(f"Unknown bench suite {word!r}{did_you_mean(word, sorted(SUITES))}; run `rlsft bench"
                             f" <suite> size=quick|full` with a suite of {sorted(SUITES)}.")  # fmt: skip
        name = f"bench/{word}"
    return word, rest, compose_config(name, rest)


def run_data(overrides: list[str]) -> dict:
    from rlsft.data import making, policy_export
    from rlsft.envs.control import ControlEnv, env_dims
    from rlsft.options import checked_options

    action, overrides, cfg = composed("data", overrides)
    if action == "make":
        settings = {key: cfg[key] for key in ("kind", "steps", "data_dir", "seed", "num_envs", "version")}
        checked_options(making.make_dataset, settings, where="", supplied=("env",))  # steps=abc is one sentence
        return {"dataset": making.make_dataset(ControlEnv.from_config(cfg.env), **settings), "data_dir": cfg.data_dir}
    if action == "policies":
        command = "rlsft data policies " + " ".join(overrides)
        root = making.policy_folder(cfg.version)
        settings = {key: cfg[key] for key in ("replay_snapshots", "replace", "choose_steps")}
        checked_options(policy_export.export_policies, settings, where="")
        run_dir = list(cfg.run_dir) if OmegaConf.is_list(cfg.run_dir) else cfg.run_dir  # one, or several to choose
        return policy_export.export_policies(run_dir, cfg.env.name, *env_dims(cfg.env.id), command, root, **settings)
    raise RLSFTError(f"Unknown data action {action!r}; use `rlsft data make ...` or `rlsft data policies ...`.")


def run_bench(overrides: list[str]) -> dict:
    from rlsft.bench import SUITES

    suite, _, cfg = composed("bench", overrides)
    if cfg.size not in cfg.sizes:  # every suite's YAML names its sizes
        raise RLSFTError(
            f"Unknown bench size {cfg.size!r}{did_you_mean(cfg.size, sorted(cfg.sizes))}; choose one of"
            f" {sorted(cfg.sizes)}."
        )
    return SUITES[suite](cfg)


COMMANDS = {"train": run_train, "evaluate": run_evaluate, "export": run_export, "data": run_data, "bench": run_bench}


def run_hydra_train(args: argparse.Namespace) -> int:
    """`rlsft train --cfg ...` and `rlsft train -m ...` through hydra's own app, once every choice and the
    first job's keys are known good (a mistake is one sentence before hydra starts)."""
    overrides = default_budget(args.overrides)
    if args.cfg:
        check("train", overrides)
        hydra_app("train", ["--cfg", args.cfg, *(["--resolve"] if args.resolve else [])], overrides, lambda cfg: {})
        return 0
    result = multirun("train", overrides, train_task)
    print(json.dumps(result, indent=2))
    if stopping.requested():
        print(
            "rlsft: The sweep stopped on SIGTERM; run the same command to go on (finished jobs give their summaries,"
            " stopped ones resume from their checkpoints).",
            file=sys.stderr,
        )
        return STOPPED_STATUS
    return 2 if result["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rlsft", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("command", choices=sorted(COMMANDS))
    parser.add_argument("overrides", nargs="*", help="hydra overrides, e.g. algorithm=iw_sft env=hopper data=<id|path>")
    parser.add_argument(
        "--cfg",
        nargs="?",
        const="job",
        choices=["job", "hydra", "all"],
        help="print the config (hydra's --cfg) and exit",
    )
    parser.add_argument("--resolve", action="store_true", help="with --cfg: resolve interpolations before printing")
    parser.add_argument("-m", "--multirun", action="store_true", help="train: sweep `key=a,b,c` lists with hydra")
    args = parser.parse_intermixed_args(argv)
    try:
        if args.command == "train" and (args.cfg or args.multirun):
            return run_hydra_train(args)
        if args.multirun:
            raise RLSFTError(f"-m sweeps `rlsft train`, not `rlsft {args.command}`; drop -m.")
        if args.cfg:
            print(OmegaConf.to_yaml(composed(args.command, args.overrides)[2], resolve=args.resolve))
            return 0
        result = COMMANDS[args.command](args.overrides)
    except OSError as error:  # a folder that cannot be made, a full disk, a file without permission
        where = f" {error.filename}" if error.filename else ""
        print(
            f"rlsft: error: Cannot read or write{where} ({error.strerror or reason(error)}); check that path, its"
            " permissions and the free space, or pass another run_dir= / data_dir=.",
            file=sys.stderr,
        )
        return 2
    except MISTAKES as error:
        if (sentence := mistake(error)) is None:
            raise
        print(f"rlsft: error: {sentence}", file=sys.stderr)
        return 2
    except RunStopped as stop:
        print(f"rlsft: {stop}", file=sys.stderr)
        return STOPPED_STATUS
    except KeyboardInterrupt:  # Ctrl-C: at once, as a shell expects (status 130), with no traceback
        print(
            "rlsft: Interrupted (Ctrl-C); the same command goes on from the run's last checkpoint (SIGTERM instead"
            " stops a run at the step it is on, with a checkpoint of that step).",
            file=sys.stderr,
        )
        return 128 + 2
    if result is not None:  # None: a rank of a torchrun run other than rank 0, which prints it
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
