"""A mix's batches (algorithm=mix): each part's batch from its own source, under the part's name."""

from __future__ import annotations

from tensordict import TensorDict

from rlsft.sources.base import BatchSource


class MixedSource:
    """One batch a step holding every part's (`batch[<part>]`), drawn in the parts' order, so resume is exact.

    Under data parallel, where one part's source draws per rank (rollouts), the whole mix's RNG is per rank:
    an offline part then draws its share of a different global batch on each rank, as unbiased as one."""

    def __init__(self, sources: dict[str, BatchSource]) -> None:
        self.sources = sources
        self.keys = tuple(sources)
        self.per_rank = any(source.per_rank for source in sources.values())

    def sample(self) -> TensorDict:
        return TensorDict({name: source.sample() for name, source in self.sources.items()}, batch_size=[])

    def metrics(self) -> dict[str, float]:
        return {
            f"{name}/{key}": value for name, source in self.sources.items() for key, value in source.metrics().items()
        }

    def state_dict(self) -> dict:
        return {name: source.state_dict() for name, source in self.sources.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, source in self.sources.items():
            source.load_state_dict(state[name])

    def close(self) -> None:
        for source in self.sources.values():
            source.close()
