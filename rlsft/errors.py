"""The one exception type for mistakes a user can fix (bad data, bad config), its wording helpers, and the
exception of a run stopped on request (rlsft/stopping.py)."""

from __future__ import annotations

import difflib

from omegaconf.errors import OmegaConfBaseException


class RLSFTError(Exception):
    """A user-fixable problem, explained in one sentence that names the fix.

    The CLI prints the message alone, without a traceback, and exits with status 2.
    """


class RunStopped(Exception):  # noqa: N818 (a request carried out, not an error)
    """A run stopped on request (SIGTERM) at a step its checkpoint holds; the message says where, and how to go
    on. The CLI prints it alone and exits with STOPPED_STATUS."""


STOPPED_STATUS = 128 + 15  # as a shell reports a process SIGTERM ended


def reason(error: BaseException) -> str:
    """The first line of a library's error message, to quote inside a one-sentence RLSFTError."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def rlsft_cause(error: BaseException) -> RLSFTError | None:
    """The RLSFTError behind a library's error, if any (OmegaConf wraps a resolver's error, twice, as context)."""
    seen = error
    while seen is not None and not isinstance(seen, RLSFTError):
        seen = seen.__cause__ or seen.__context__
    return seen


def did_you_mean(word: str, options: list[str]) -> str:
    """' (did you mean X?)' for the option nearest to a mistyped `word`, else ''."""
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.8)
    return f" (did you mean {close[0]}?)" if close else ""


def out_of_memory(error: BaseException) -> RLSFTError | None:
    """The sentence for an allocation that failed (MemoryError, torch's CPU allocator's "can't allocate memory",
    torch.OutOfMemoryError on CUDA, matched by name: no torch import here), else None."""
    if not (
        isinstance(error, MemoryError)
        or type(error).__name__ == "OutOfMemoryError"
        or "can't allocate memory" in str(error)
    ):
        return None
    return RLSFTError(
        f"Out of memory ({reason(error)}); lower learner.batch_size (or the policy's or the sampler's sizes) or free"
        " memory; a run resumes from its last checkpoint."
    )


# The errors `mistake` may turn into a sentence: an `except MISTAKES` clause hands each to it (torch's CPU allocator
# raises RuntimeError when out of memory, CUDA's a subclass)
MISTAKES = (RLSFTError, OmegaConfBaseException, MemoryError, RuntimeError)


def mistake(error: BaseException) -> RLSFTError | None:
    """The one sentence for an error a user can fix: an RLSFTError, a config value that cannot be resolved or
    has the wrong type (the RLSFTError its resolver raised, else OmegaConf's first line), running out of
    memory; else None (a bug: its traceback is shown)."""
    if isinstance(error, RLSFTError):
        return error
    if isinstance(error, OmegaConfBaseException):
        return rlsft_cause(error) or RLSFTError(f"Bad config value ({reason(error)}); fix that override.")
    return out_of_memory(error)
