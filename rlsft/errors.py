"""The one exception type for mistakes a user can fix (bad data, bad config)."""


class RLSFTError(Exception):
    """A user-fixable problem, explained in one sentence that names the fix.

    The CLI prints the message alone, without a traceback, and exits with status 2.
    """
