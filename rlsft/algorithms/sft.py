"""SFT on curated data: fine-tune pi_ref by maximum likelihood on D+ (method.md §2).

    J(theta) >= c_ref * E_{tau in D+} [ log p(tau; theta) ] + const

The bound is tight at theta = pi_ref and loosens as the policy drifts from it; iw-SFT
(iw_sft.py) tightens it.
"""

from __future__ import annotations

from rlsft.algorithms.bc import BC


class SFT(BC):
    name = "sft"
    init_from_reference = True
