"""The library's exceptions."""


class BendingError(Exception):
    """A bend, a name or a call that cannot be done as asked."""


class UnknownNameError(BendingError, KeyError):
    """A name or pattern that matches nothing; the message lists the closest names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class TraceError(BendingError):
    """A method that cannot be traced, or a call that breaks what its trace assumed."""
