"""Synthetic arithmetic with a difficulty knob: `digits` per operand and the `operations` used.

Problems are split by a hash of the problem itself, so a held-out problem never appears in
training whatever the sizes asked for; the same seed always gives the same problems.
"""

from __future__ import annotations

import hashlib
import operator
import random
from collections.abc import Sequence

from rlsft.envs.text.base import TextExample, TextTask, check_split

OPERATIONS = {"+": operator.add, "-": operator.sub, "*": operator.mul}


class Arithmetic(TextTask):
    name = "arithmetic"

    def __init__(
        self,
        digits: int = 2,
        operations: Sequence[str] = ("+",),
        train_size: int = 2000,
        test_size: int = 200,
        test_fraction: float = 0.1,
        seed: int = 0,
    ) -> None:
        unknown = set(operations) - set(OPERATIONS)
        if unknown or not operations or digits < 1:
            raise ValueError(
                f"arithmetic needs digits >= 1 and operations from {list(OPERATIONS)}, not {digits}, {operations}"
            )
        if train_size < 1 or test_size < 1 or not 0 < test_fraction < 1:
            raise ValueError(
                f"arithmetic needs train_size and test_size >= 1 and 0 < test_fraction < 1, not {train_size},"
                f" {test_size}, {test_fraction}"
            )
        self.digits, self.operations = digits, list(operations)
        self.sizes = {"train": train_size, "test": test_size}
        self.test_fraction, self.seed = test_fraction, seed

    def split_of(self, problem: str) -> str:
        bucket = int.from_bytes(hashlib.blake2b(problem.encode(), digest_size=4).digest(), "big") / 2**32
        return "test" if bucket < self.test_fraction else "train"

    def examples(self, split: str) -> list[TextExample]:
        check_split(split)
        rng = random.Random(f"{self.seed}-{split}")
        low, high = 10 ** (self.digits - 1) if self.digits > 1 else 0, 10**self.digits - 1
        examples, seen = [], set()
        space = len(self.operations) * (high - low + 1) ** 2
        while len(examples) < self.sizes[split] and len(seen) < space:
            a, b, symbol = rng.randint(low, high), rng.randint(low, high), rng.choice(self.operations)
            problem = f"{a} {symbol} {b}"
            if problem in seen:
                continue
            seen.add(problem)
            if self.split_of(problem) == split:
                examples.append(TextExample(f"What is {problem}?", str(OPERATIONS[symbol](a, b))))
        return examples
