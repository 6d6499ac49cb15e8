"""Datasets (Minari, D4RL HDF5), curation by return, and trajectory replay buffers."""

from rlsft.data.curation import curate
from rlsft.data.load import load_dataset
from rlsft.data.minari_io import write_minari
from rlsft.data.replay import TrajectorySource, trajectory_buffer
from rlsft.data.trajectories import TrajectoryDataset

__all__ = ["TrajectoryDataset", "TrajectorySource", "curate", "load_dataset", "trajectory_buffer", "write_minari"]
