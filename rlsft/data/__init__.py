"""Datasets: Minari and D4RL HDF5 files, text completions, curation by return, and making D4RL-style datasets."""

from rlsft.data.curation import curate
from rlsft.data.load import load_dataset
from rlsft.data.minari_io import write_minari
from rlsft.data.trajectories import TrajectoryDataset

__all__ = ["TrajectoryDataset", "curate", "load_dataset", "write_minari"]
