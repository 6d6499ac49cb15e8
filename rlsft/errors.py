"""The one exception type for mistakes a user can fix (bad data, bad config)."""


class RLSFTError(Exception):
    """A user-fixable problem, explained in one sentence that names the fix.

    The CLI prints the message alone, without a traceback, and exits with status 2.
    """


def reason(error: BaseException) -> str:
    """The first line of a library's error message, to quote inside a one-sentence RLSFTError."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
