"""The library's exceptions, all importable from `torchbend`.

>>> import torchbend as tb
>>> issubclass(tb.SpecializationError, tb.TraceError) and issubclass(tb.ConfigError, tb.BendingError)
True
"""


class BendingError(Exception):
    """A bend, a name or a call that cannot be done as asked."""


class UnknownNameError(BendingError, KeyError):
    """A name or pattern that matches nothing; the message lists the closest names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class TraceError(BendingError):
    """A method that cannot be traced, or a call that breaks what its trace assumed."""


class SpecializationError(TraceError):
    """A call whose values would take another path than the traced one."""


class ColdStateError(TraceError):
    """A method traced before its state exists (a streaming cache made on its first call): run it once first."""


class ConfigError(BendingError):
    """A config that cannot be saved, read or applied; the message names the file and the field."""


class ExportError(BendingError):
    """A bended module that cannot be exported as asked; the message says which part and why."""
