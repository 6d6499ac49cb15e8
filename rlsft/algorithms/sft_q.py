"""SFT(Q): SFT on quality-scored data, R(tau) = sum_i 1[S(tau) > c_i] (method.md §2).

The bound becomes maximum likelihood over the multiset D+_{c1} + ... + D+_{cC}: a
trajectory passing k thresholds is sampled k times as often (sampling, not loss weights).
"""

from __future__ import annotations

from rlsft.algorithms.sft import SFT


class SFTQ(SFT):
    name = "sft_q"
    sampling = "quality"
