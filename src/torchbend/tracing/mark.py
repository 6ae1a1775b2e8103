"""`mark`: give a tensor inside your own code a stable activation name.

    >>> def forward(self, x):
    ...     h = tb.mark(self.body(x) * 2, "features")    # an activation named "features"
    ...     return self.head(h)

Outside tracing, `mark` returns its argument unchanged, so the code runs as before.
"""

from __future__ import annotations

from typing import TypeVar

from .tracer import ConcreteProxy

T = TypeVar("T")


def mark(value: T, name: str) -> T:
    """Name the traced node that produced `value` (a no-op outside tracing); returns `value`."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"an activation name must be a Python identifier, got {name!r}")
    if not isinstance(value, ConcreteProxy):
        return value
    value.node._rename(name)
    return value
