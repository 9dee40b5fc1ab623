"""The one exception type a user sees: a message naming the problem and the fix."""


class EdgennError(Exception):
    """A failure of the work (exit 1) that the CLI prints as one line, never as a traceback."""

    exit_code = 1
