"""`rlsft train data=<file.hdf5>` on random D4RL-layout files: one sentence or a sound run, never a traceback.

Each example is a Hopper-shaped D4RL file written with h5py: valid (any numeric dtype, flags
and rewards as `[steps]` or `[steps, 1]`, an env attribute or none) or broken in one or two
keys (missing, ragged, of another shape or dtype, holding NaN/inf/1e300, a group, an empty
dataspace or a dangling link in place of an array, another env's id). A valid file must train
to a finite score, a broken one must be refused with exit code 2 and exactly one
`rlsft: error:` line; files with extreme but finite values (1e38) may go either way, but never
to a traceback or a NaN summary.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rlsft.cli import main

KEYS = ("observations", "actions", "rewards", "terminals", "timeouts")
WIDTHS = {"observations": 11, "actions": 3}  # Hopper-v5's; the other keys hold one value per step
NUMERIC = ("float16", "float32", "float64", "int8", "int32", "int64", "uint8", "bool")
BREAKS = ("missing", "length", "extra_dim", "scalar", "width", "not_numbers", "bad_value", "hdf5_object", "dangling")
GOOD_ENVS = ({}, {"env_id": "Hopper-v5"}, {"env": b"hopper-medium-v2"}, {"env_id": "Hopper-v4"}, {"env": ""})
BAD_ENVS = ({"env_id": "Walker2d-v5"}, {"env": "halfcheetah-medium-v2"}, {"env_id": 3})
# stand-ins for an HDF5 group, an empty dataspace and a soft link to nothing where an array belongs
GROUP, EMPTY, DANGLING = "group", "empty", "dangling"


def valid_array(key: str, steps: int, dtype: str, column: bool, rng: np.random.Generator) -> np.ndarray:
    """What a D4RL exporter might write for `key`: plausible values in any numeric dtype."""
    shape = (steps, WIDTHS[key]) if key in WIDTHS else (steps, 1) if column else (steps,)
    if key in ("terminals", "timeouts"):
        return (rng.random(shape) < 0.2).astype(dtype)
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        low = 0 if dtype == "uint8" else -1
        return rng.integers(low, 2, shape).astype(dtype)
    scale = 1.0 if key == "actions" else 10.0
    return (scale * rng.uniform(-1, 1, shape)).astype(dtype)


def broken_array(key: str, how: str, steps: int, rng: np.random.Generator, value: float):
    """`key` broken in the way `how` names; None when the key is left out."""
    if how == "missing":
        return None
    if how == "hdf5_object":
        return GROUP if rng.random() < 0.5 else EMPTY
    if how == "dangling":
        return DANGLING
    if how == "not_numbers":
        kinds = [
            np.array([b"0.5"] * steps),
            np.array(["0.5"] * steps, dtype=h5py.string_dtype()),
            np.zeros(steps, dtype=[("x", "f4"), ("y", "f4")]),
            np.zeros(steps, np.complex64),
        ]
        vlen = np.empty(steps, dtype=h5py.vlen_dtype(np.float32))  # ragged rows: an object array
        for index in range(steps):
            vlen[index] = np.zeros(index % 3 + 1, np.float32)
        return [*kinds, vlen][rng.integers(5)]
    good = valid_array(key, steps, "float64", False, rng)
    if how == "length":
        return valid_array(key, steps + int(rng.choice([-1, 1, 3])) if steps else 2, "float32", False, rng)
    if how == "extra_dim":
        return good[..., None].repeat(2, -1)
    if how == "scalar":
        return np.float64(0.5) if key not in WIDTHS or rng.random() < 0.3 else good[:, 0]  # 1-D: dim 1, not 11/3
    if how == "width":
        return np.zeros((steps, WIDTHS[key] + int(rng.choice([-WIDTHS[key], -1, 1]))), np.float32)
    if key in ("terminals", "timeouts"):
        value = float(rng.choice([0.5, 2.0, -1.0, np.nan]))
    if steps:
        good.reshape(steps, -1)[rng.integers(steps), rng.integers(good.reshape(steps, -1).shape[1])] = value
    if rng.random() < 0.2:
        with np.errstate(over="ignore"):
            return good.astype(np.float16)  # 1e300 becomes inf in the file
    return good


@st.composite
def d4rl_files(draw) -> tuple[dict, dict, str]:
    """(arrays by key, file attributes, what must happen: "ok", "refused" or "either")."""
    steps = draw(st.integers(0, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    arrays = {key: valid_array(key, steps, draw(st.sampled_from(NUMERIC)), draw(st.booleans()), rng) for key in KEYS}
    verdict = "ok" if steps else "refused"  # a file of no steps is refused whatever else it holds
    attrs = draw(st.sampled_from(GOOD_ENVS))
    kind = draw(st.sampled_from(["valid"] * 3 + ["extreme", "other_env"] + ["broken"] * 5))
    if kind == "valid":  # about a quarter of the examples train
        return arrays, attrs, verdict
    if kind == "extreme" and steps:  # finite in float32, yet the learner may stop on a non-finite loss
        key = draw(st.sampled_from(("observations", "actions", "rewards")))
        arrays[key] = arrays[key].astype(np.float32)
        arrays[key].flat[0] = draw(st.sampled_from([1e38, -3.4e38, 1e30]))
        return arrays, attrs, "either"
    if kind == "other_env":
        return arrays, draw(st.sampled_from(BAD_ENVS)), "refused"
    for key in draw(st.sets(st.sampled_from(KEYS), min_size=1, max_size=2)):
        how = draw(st.sampled_from(BREAKS if key in WIDTHS else [b for b in BREAKS if b != "width"]))
        value = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e300, 3.5e38]))
        arrays[key] = broken_array(key, how, steps, rng, value)
    return {key: value for key, value in arrays.items() if value is not None}, attrs, "refused"


def write_file(path: Path, arrays: dict, attrs: dict) -> str:
    with h5py.File(path, "w") as file:
        for key, value in arrays.items():
            if isinstance(value, str) and value == GROUP:
                file.create_group(key)
            elif isinstance(value, str) and value == DANGLING:
                file[key] = h5py.SoftLink(f"/{key}-elsewhere")
            else:
                file[key] = h5py.Empty("f") if isinstance(value, str) else value
        file.attrs.update(attrs)
    return str(path)


@pytest.mark.filterwarnings("ignore:Dataset .* does not record the env")  # tested in test_data.py
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every CI run; raise max_examples locally to search further
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=d4rl_files())
def test_any_d4rl_file_gives_one_sentence_or_a_finite_score(case, tmp_path_factory, tiny_train, capsys):
    arrays, attrs, verdict = case
    folder = tmp_path_factory.mktemp("fuzz")
    path = write_file(folder / "data.hdf5", arrays, attrs)
    capsys.readouterr()
    code = main(tiny_train(path, folder, folder / "run"))
    err = capsys.readouterr().err
    event(f"{verdict} file, exit {code}")  # pytest --hypothesis-show-statistics shows the mix
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rlsft: error: "), err
        assert verdict != "ok", f"a valid file was refused: {lines[0]}"
    else:
        assert code == 0 and verdict != "refused", f"exit {code} for a broken file; stderr: {err}"
        score = json.loads((folder / "run" / "summary.json").read_text())["normalized_score"]
        assert math.isfinite(score)
