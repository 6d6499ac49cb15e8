"""Cache keys: a short hex digest of what a cached thing is made from, which names its file or folder.

The caches already on disk (datasets' steps, pi_ref policies, sampled completions) are named by
such keys, so each caller keeps the algorithm and size its caches were first written with:
changing either would orphan them, and the next run would build them all again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def cache_key(parts: Iterable[str | bytes], *, digest_size: int, algorithm: str = "blake2b") -> str:
    """The hex digest, `digest_size` bytes long, of `parts` fed in order (strings as UTF-8).

    blake2b is made with that digest size (not a longer digest cut short, which differs); any other
    hashlib algorithm's digest is cut to it.
    """
    digest = hashlib.blake2b(digest_size=digest_size) if algorithm == "blake2b" else hashlib.new(algorithm)
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
    return digest.hexdigest()[: 2 * digest_size]
