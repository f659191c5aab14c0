"""The one exception type users see: a one-line message that says what to do."""


class T2VError(ValueError):
    """A user-facing error; the CLI prints its message without a traceback."""
