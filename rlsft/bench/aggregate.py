"""Scores across datasets with rliable (Agarwal et al. 2021): IQM and mean with stratified-bootstrap 95%
intervals, and the probability that one algorithm improves on another, with its interval."""

from __future__ import annotations

import warnings

import numpy as np

from rlsft.checkpoint import rng_preserved
from rlsft.errors import RLSFTError


def rliable():
    try:
        with warnings.catch_warnings():  # arch and seaborn warn about their own dependencies at import
            warnings.simplefilter("ignore")
            from rliable import library, metrics
        # arch (rliable's bootstrap) warns that passing a RandomState, rliable's way to seed it, is deprecated
        warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
    except ImportError as error:
        raise RLSFTError(f"The benchmark reports need rliable ({error}); `pip install -e '.[bench]'`.") from error
    return library, metrics


def aggregate_scores(
    scores: dict[str, np.ndarray], improvements: list[tuple[str, str]], reps: int, seed: int = 0
) -> dict:
    """`scores[method]`: [seeds, tasks] of final scores -> IQM and mean, and the probability that the first
    method of each pair in `improvements` improves on the second."""
    library, metrics = rliable()

    def iqm_and_mean(matrix: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(matrix), metrics.aggregate_mean(matrix)])

    # rliable's bootstraps draw from numpy's global RNG whatever random_state says (under arch 7.2 two calls with
    # the same random_state differ): seeded before each, and left as it was after, so that a report rebuilt from
    # the same runs is the same.
    with rng_preserved():
        np.random.seed(seed)
        points, intervals = library.get_interval_estimates(
            scores, iqm_and_mean, reps=reps, random_state=np.random.RandomState(seed)
        )
        pairs = {f"{a},{b}": (scores[a], scores[b]) for a, b in improvements if a in scores and b in scores}
        improvement = {}
        if pairs:
            np.random.seed(seed)
            better, better_intervals = library.get_interval_estimates(
                pairs, metrics.probability_of_improvement, reps=reps, random_state=np.random.RandomState(seed)
            )
            improvement = {
                pair: {"estimate": float(better[pair]), "ci95": [float(v) for v in np.ravel(better_intervals[pair])]}
                for pair in pairs
            }
    aggregate = {
        algorithm: {
            name: {"estimate": float(points[algorithm][i]), "ci95": [float(v) for v in intervals[algorithm][:, i]]}
            for i, name in enumerate(("iqm", "mean"))
        }
        for algorithm in scores
    }
    return {"scores": aggregate, "probability_of_improvement": improvement}
