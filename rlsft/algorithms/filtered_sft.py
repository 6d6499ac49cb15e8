"""Filtered SFT (%BC): behaviour cloning from scratch on the top trajectories only.

    L(theta) = - E_{tau in D+} [ log p(tau; theta) ],   D+ = {tau : R(tau) >= c}

The filter (by default the top 10% of episodes by undiscounted return, CORL's 10% BC)
lives in configs/algorithm/filtered_sft.yaml.
"""

from __future__ import annotations

from rlsft.algorithms.bc import BC


class FilteredSFT(BC):
    name = "filtered_sft"
