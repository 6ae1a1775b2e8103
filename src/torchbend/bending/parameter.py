"""Live controls: `BendingParameter` and the values derived from it by arithmetic.

    >>> import torchbend as tb
    >>> gain = tb.BendingParameter("gain", 2.0, range=(0.0, 10.0))
    >>> double = 2 * gain            # a derived value that follows `gain`
    >>> gain.value = 3.0
    >>> float(double)
    6.0

A callback stores a parameter (or a plain number) and reads it with ``float(p)``,
``int(p)`` or ``bool(p)`` each time it runs, so a new value takes effect at the next
call without re-tracing.
"""

from __future__ import annotations

import inspect
import operator
import weakref
from collections.abc import Callable, Iterator
from typing import Any

Number = float | int | bool


class LiveValue:
    """A number that can change after a bend is made: a parameter or an expression of parameters."""

    @property
    def value(self) -> Number:
        raise NotImplementedError

    def sources(self) -> Iterator[BendingParameter]:
        """The parameters this value depends on."""
        raise NotImplementedError

    def __float__(self) -> float:
        return float(self.value)

    def __int__(self) -> int:
        return int(self.value)

    def __index__(self) -> int:
        return operator.index(self.value)

    def __bool__(self) -> bool:
        return bool(self.value)

    # arithmetic builds expressions that follow their sources
    def __add__(self, other: Any) -> Expression:
        return Expression(operator.add, self, other)

    def __radd__(self, other: Any) -> Expression:
        return Expression(operator.add, other, self)

    def __sub__(self, other: Any) -> Expression:
        return Expression(operator.sub, self, other)

    def __rsub__(self, other: Any) -> Expression:
        return Expression(operator.sub, other, self)

    def __mul__(self, other: Any) -> Expression:
        return Expression(operator.mul, self, other)

    def __rmul__(self, other: Any) -> Expression:
        return Expression(operator.mul, other, self)

    def __truediv__(self, other: Any) -> Expression:
        return Expression(operator.truediv, self, other)

    def __rtruediv__(self, other: Any) -> Expression:
        return Expression(operator.truediv, other, self)

    def __pow__(self, other: Any) -> Expression:
        return Expression(operator.pow, self, other)

    def __rpow__(self, other: Any) -> Expression:
        return Expression(operator.pow, other, self)

    def __neg__(self) -> Expression:
        return Expression(operator.neg, self)

    def __abs__(self) -> Expression:
        return Expression(operator.abs, self)


def value_of(x: Any) -> Any:
    """The current value of a live value, or `x` itself for a plain number."""
    return x.value if isinstance(x, LiveValue) else x


def sources_of(x: Any) -> Iterator[BendingParameter]:
    """The parameters a value depends on (none for a plain number)."""
    if isinstance(x, LiveValue):
        yield from x.sources()


class Expression(LiveValue):
    """A value computed from parameters and numbers, e.g. ``2 * p + 1``; read-only."""

    def __init__(self, op: Callable[..., Number], *operands: Any) -> None:
        for operand in operands:
            if not isinstance(operand, (LiveValue, int, float, bool)):
                raise TypeError(
                    f"cannot combine a bending parameter with {type(operand).__name__}; "
                    "use numbers or other parameters"
                )
        self.op = op
        self.operands = operands

    @property
    def value(self) -> Number:
        return self.op(*(value_of(o) for o in self.operands))

    def sources(self) -> Iterator[BendingParameter]:
        for operand in self.operands:
            yield from sources_of(operand)

    def __repr__(self) -> str:
        symbol = {operator.add: "+", operator.sub: "-", operator.mul: "*",
                  operator.truediv: "/", operator.pow: "**"}.get(self.op)
        if symbol and len(self.operands) == 2:
            return f"({self.operands[0]!r} {symbol} {self.operands[1]!r})"
        return f"{self.op.__name__}({', '.join(map(repr, self.operands))})"


class BendingParameter(LiveValue):
    """A named, live float, int or bool that callbacks read at each call.

        >>> p = tb.BendingParameter("mask", 0.2, range=(0.0, 1.0))
        >>> cb = tb.Mask(prob=p)
        >>> p.value = 0.5                     # or bended.update("mask", 0.5)

    The type follows the initial value (bool, int or float). `range` is an inclusive
    ``(low, high)`` pair, either end may be None; a value outside it raises ValueError.
    """

    def __init__(self, name: str, value: Number, range: tuple[Number | None, Number | None] | None = None) -> None:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"a parameter name must be a Python identifier, got {name!r}")
        if isinstance(value, LiveValue):
            value = value.value
        if hasattr(value, "item"):  # a one-element tensor or numpy scalar
            value = value.item()
        if not isinstance(value, (bool, int, float)):
            raise TypeError(f"parameter {name!r}: value must be a float, int or bool, got {type(value).__name__}")
        self.name = name
        self.type: type = type(value)
        low, high = (None, None) if range is None else range
        self.range: tuple[Number | None, Number | None] = (low, high)
        self._listeners: list[weakref.ReferenceType] = []
        self._value: Number = self._check(value)

    @property
    def value(self) -> Number:
        return self._value

    @value.setter
    def value(self, new: Number) -> None:
        new = self._check(new)
        if new == self._value and type(new) is type(self._value):
            return
        self._value = new
        self._notify()

    def set(self, new: Number) -> None:
        """Same as ``p.value = new``."""
        self.value = new

    def sources(self) -> Iterator[BendingParameter]:
        yield self

    def _check(self, new: Any) -> Number:
        if isinstance(new, LiveValue):
            new = new.value
        if hasattr(new, "item"):
            new = new.item()
        if self.type is bool:
            if new not in (0, 1) or isinstance(new, str):
                raise ValueError(f"parameter {self.name!r} is a bool; got {new!r}")
            new = bool(new)
        elif self.type is int:
            if not isinstance(new, (int, float)) or float(new) != int(new):
                raise ValueError(f"parameter {self.name!r} is an int; got {new!r}")
            new = int(new)
        else:
            if not isinstance(new, (int, float)):
                raise ValueError(f"parameter {self.name!r} is a float; got {new!r}")
            new = float(new)
        low, high = self.range
        if (low is not None and new < low) or (high is not None and new > high):
            raise ValueError(f"parameter {self.name!r}: {new!r} is outside its range [{low}, {high}]")
        return new

    # change notification, used by BendedModule to recompute bent weights once
    def subscribe(self, listener: Callable[[BendingParameter], None]) -> None:
        """Call `listener(self)` after each change; a bound method is held weakly."""
        ref = weakref.WeakMethod(listener) if inspect.ismethod(listener) else (lambda f=listener: f)
        self._listeners.append(ref)

    def unsubscribe(self, listener: Callable[[BendingParameter], None]) -> None:
        self._listeners = [r for r in self._listeners if r() is not None and r() != listener]

    def _notify(self) -> None:
        alive = []
        for ref in self._listeners:
            listener = ref()
            if listener is not None:
                alive.append(ref)
                listener(self)
        self._listeners = alive

    def __repr__(self) -> str:
        rng = "" if self.range == (None, None) else f", range={self.range}"
        return f"BendingParameter({self.name!r}, {self._value!r}{rng})"
