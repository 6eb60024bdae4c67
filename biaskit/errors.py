"""Exceptions that the command line turns into one-line messages.

`UsageError` is a mistake in what the caller asked for (an unknown name, a bad
parameter) and exits with status 2. `BiaskitError` is a failure while doing valid
work (missing data, a corrupt checkpoint) and exits with status 1.
"""


class BiaskitError(Exception):
    """A runtime failure whose message names the value and the fix."""

    exit_code = 1


class UsageError(BiaskitError, ValueError):
    """An invalid request: unknown name, unknown or invalid parameter, bad shape."""

    exit_code = 2
