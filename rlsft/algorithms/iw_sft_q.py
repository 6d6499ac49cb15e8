"""iw-SFT(Q): importance-weighted SFT over the quality multiset D_Q+ (method.md §2)."""

from __future__ import annotations

from rlsft.algorithms.iw_sft import IWSFT


class IWSFTQ(IWSFT):
    name = "iw_sft_q"
    sampling = "quality"
