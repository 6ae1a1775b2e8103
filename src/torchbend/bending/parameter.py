"""Live controls: `BendingParameter` and the values derived from it by arithmetic.

    >>> import torchbend as tb
    >>> gain = tb.BendingParameter("gain", 2.0, range=(0.0, 10.0))
    >>> double = 2 * gain            # a derived value that follows `gain`
    >>> gain.value = 3.0
    >>> float(double)
    6.0

A callback stores a parameter (or a plain number) and reads it with ``float(p)``,
``int(p)`` or ``bool(p)`` each time it runs, so a new value takes effect at the next
call without re-tracing. During a bended call every parameter reads the value it had
when the call started (`frozen_values`), so one call never mixes old and new values.
"""

from __future__ import annotations

import contextvars
import inspect
import math
import operator
import unicodedata
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

from ..naming import is_python_name

Number = float | int | bool

# the parameter values of the bended call running in this thread (None outside calls)
_FROZEN: contextvars.ContextVar[Mapping[Any, Number] | None] = contextvars.ContextVar("torchbend_values", default=None)
_MISSING = object()


class frozen_values:  # a function to its callers
    """Inside, each parameter in `values` reads its value there instead of its live value (this thread only).

        >>> p = BendingParameter("p", 1.0)
        >>> with frozen_values({p: 2.0}):
        ...     p.value = 3.0
        ...     float(p)
        2.0

    A class rather than a generator: it is entered on every bended call.
    """

    __slots__ = ("_token", "_values")

    def __init__(self, values: Mapping[Any, Number]) -> None:
        self._values = values

    def __enter__(self) -> None:
        self._token = _FROZEN.set(self._values)

    def __exit__(self, *exc: object) -> None:
        _FROZEN.reset(self._token)


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
        return operator.index(self.value)  # type: ignore[arg-type]  # a float value raises TypeError, as it should

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
    """A value computed from parameters and numbers, e.g. ``2 * p + 1``; read-only.

    It is evaluated in floating point (an int or bool result is kept as such only when
    every operand is), and a result that overflows or is not finite raises ValueError.
    """

    def __init__(self, op: Callable[..., Number], *operands: Any) -> None:
        for operand in operands:
            if not isinstance(operand, (LiveValue, int, float, bool)):
                raise TypeError(
                    f"cannot combine a bending parameter with {type(operand).__name__}; use numbers or other parameters"
                )
        self.op = op
        self.operands = operands

    @property
    def value(self) -> Number:
        operands = [value_of(o) for o in self.operands]
        exact = all(isinstance(o, (bool, int)) for o in operands) and self.op is not operator.pow
        try:
            result = self.op(*(operands if exact else [float(o) for o in operands]))
        except (OverflowError, ZeroDivisionError, ValueError) as error:
            raise ValueError(f"the expression {self!r} cannot be evaluated with {operands}: {error}") from None
        if isinstance(result, complex) or not math.isfinite(result):
            raise ValueError(f"the expression {self!r} gives {result!r} with {operands}: not a finite number")
        return result

    def sources(self) -> Iterator[BendingParameter]:
        for operand in self.operands:
            yield from sources_of(operand)

    def __repr__(self) -> str:
        symbol = {
            operator.add: "+",
            operator.sub: "-",
            operator.mul: "*",
            operator.truediv: "/",
            operator.pow: "**",
        }.get(self.op)
        if symbol and len(self.operands) == 2:
            return f"({self.operands[0]!r} {symbol} {self.operands[1]!r})"
        return f"{self.op.__name__}({', '.join(map(repr, self.operands))})"


def normal_name(name: Any) -> Any:
    """A parameter name in NFKC form, the form Python reads identifiers in: ``ﬁ`` and ``fi`` are one name.

    >>> normal_name("ﬁlter")
    'filter'
    """
    return unicodedata.normalize("NFKC", name) if isinstance(name, str) else name


class BendingParameter(LiveValue):
    """A named, live float, int or bool that callbacks read at each call.

        >>> p = tb.BendingParameter("mask", 0.2, range=(0.0, 1.0))
        >>> cb = tb.Mask(prob=p)
        >>> p.value = 0.5                     # or bended.update("mask", 0.5)

    The name is an identifier, kept in NFKC form (``"ﬁ"`` becomes ``"fi"``, as Python itself reads it), so
    two names that an export would write alike are one name.

    The type follows the initial value (bool, int or float). `range` is an inclusive
    ``(low, high)`` pair, either end may be None; a value outside it raises ValueError,
    as do NaN and infinities unless ``allow_nonfinite=True``. Callbacks that need a
    narrower domain (a probability in [0, 1]) add it when the parameter is given to them.
    """

    def __init__(
        self,
        name: str,
        value: Number,
        range: tuple[Number | None, Number | None] | None = None,
        allow_nonfinite: bool = False,
    ) -> None:
        name = normal_name(name)
        if not is_python_name(name):
            raise ValueError(
                f"a parameter name must be a Python identifier that is not a keyword (it names the "
                f"get_/set_ methods of exports), got {name!r}"
            )
        self.name = name
        value = _plain(name, value)
        if not isinstance(value, (bool, int, float)):
            raise TypeError(f"parameter {name!r}: value must be a float, int or bool, got {type(value).__name__}")
        self.type: type = type(value)
        self.allow_nonfinite = allow_nonfinite
        if range is not None and (not isinstance(range, (tuple, list)) or len(range) != 2):
            raise ValueError(f"parameter {name!r}: range must be a (low, high) pair, got {range!r}")
        low, high = (None, None) if range is None else range
        for end in (low, high):
            if end is not None and (isinstance(end, bool) or not isinstance(end, (int, float)) or math.isnan(end)):
                raise ValueError(f"parameter {name!r}: range ends must be numbers or None, got {range!r}")
        if low is not None and high is not None and low > high:
            raise ValueError(f"parameter {name!r}: range {range!r} is empty (low > high)")
        self.range: tuple[Number | None, Number | None] = (low, high)
        self._listeners: list[Callable[[], Any]] = []  # weak references to bound methods, or closures
        self._checks: list[tuple[weakref.ReferenceType, Callable[[Number], None]]] = []
        self._value: Number = self._check(value)

    @property
    def value(self) -> Number:
        frozen = _FROZEN.get()
        if frozen is not None:
            value = frozen.get(self, _MISSING)
            if value is not _MISSING:
                return cast(Number, value)
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

    def set_value(self, new: Number, update: bool = True) -> None:
        """Same as ``p.value = new`` (the reference torchbend's spelling; the change always takes effect)."""
        self.value = new

    def get_value(self) -> Number:
        """Same as ``p.value`` (the reference torchbend's spelling)."""
        return self.value

    def sources(self) -> Iterator[BendingParameter]:
        yield self

    def restrict(self, owner: Any, check: Callable[[Number], None]) -> None:
        """Also run `check(new)` on every new value while `owner` is alive; it raises to refuse the value.

        >>> p = tb.BendingParameter("p", 0.5)
        >>> p.restrict(cb, lambda new: tb.check_number(cb, "prob", new, low=0, high=1))
        """
        self._checks.append((weakref.ref(owner), check))

    def _check(self, new: Any) -> Number:
        new = _plain(self.name, new)
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
        if not self.allow_nonfinite and isinstance(new, float) and not math.isfinite(new):
            raise ValueError(
                f"parameter {self.name!r}: {new!r} is not a finite number "
                "(create it with allow_nonfinite=True to allow NaN and infinities)"
            )
        low, high = self.range
        if (low is not None and new < low) or (high is not None and new > high):
            raise ValueError(f"parameter {self.name!r}: {new!r} is outside its range [{low}, {high}]")
        alive = []
        for owner, check in self._checks:
            if owner() is not None:
                alive.append((owner, check))
                try:
                    check(new)
                except (TypeError, ValueError) as error:
                    raise ValueError(f"parameter {self.name!r}: {error}") from None
        self._checks = alive
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


def _plain(name: str, value: Any) -> Any:
    """A live value's current value, or a one-element tensor's or numpy scalar's item."""
    if isinstance(value, LiveValue):
        return value.value
    if hasattr(value, "item") and not isinstance(value, (bool, int, float)):
        size = getattr(value, "size", 1)
        count = value.numel() if hasattr(value, "numel") else (size if isinstance(size, int) else 1)
        if count != 1:
            raise ValueError(f"parameter {name!r} takes one number, got a {type(value).__name__} of {count} values")
        return value.item()
    return value
