"""One entry point from `data=<Minari id | Minari folder | D4RL .hdf5 path>` to trajectories."""

from __future__ import annotations

from pathlib import Path

from rlsft.data.d4rl_hdf5 import read_d4rl_hdf5
from rlsft.data.minari_io import find_minari, minari_roots, read_minari
from rlsft.data.trajectories import TrajectoryDataset
from rlsft.errors import RLSFTError

HDF5_SUFFIXES = (".hdf5", ".h5")


def load_dataset(spec: str | None, data_dir: str | Path) -> TrajectoryDataset:
    """Load the dataset named by `spec`, looking up Minari ids under `data_dir` and Minari's root."""
    if not spec:
        raise RLSFTError("No dataset given; pass data=<Minari dataset id, Minari dataset folder or D4RL .hdf5 file>.")
    if not isinstance(spec, str):  # hydra reads data=7 as an int and data=[a,b] as a list
        raise RLSFTError(f"data={spec} is not a dataset name; pass a Minari dataset id, folder or .hdf5 path.")
    path = Path(spec).expanduser()
    if path.suffix.lower() in HDF5_SUFFIXES:
        if not path.is_file():
            raise RLSFTError(f"Dataset file {path} does not exist; check the path given as data=.")
        return read_d4rl_hdf5(path)
    folder = find_minari(spec, data_dir)
    if folder is None:
        roots = ", ".join(str(root) for root in minari_roots(data_dir))
        raise RLSFTError(
            f"Dataset {spec!r} was not found as a file, a Minari folder, or a Minari id under {roots};"
            " check data= or set data_dir=/RLSFT_DATA to where it lives."
        )
    return read_minari(folder, spec, Path(data_dir).expanduser() / "cache")
