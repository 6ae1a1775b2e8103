"""Argument checks shared by every callback: one clear error naming the argument and its valid range.

>>> check_number("Zoom", "factor", 0, low=0, open_low=True)
Traceback (most recent call last):
ValueError: Zoom: factor must be > 0, got 0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .parameter import BendingParameter, LiveValue, frozen_values, sources_of, value_of
from .trainable import Trainable

PADDINGS = ("zeros", "reflection", "wrap")


def check_number(
    owner: Any,
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
    open_low: bool = False,
    trainable: bool = False,
) -> Any:
    """`value` itself if it is a number, or a live value, inside ``[low, high]``; else a clear error.

        >>> check_number(tb.Scale(), "scale", "a")
        Traceback (most recent call last):
        TypeError: Scale: scale must be a number or a tb.BendingParameter, got 'a' (str)

    `open_low` excludes `low` itself; `integer` asks for a whole number. A live value (a
    `BendingParameter`, or an expression such as ``2 * p``) is checked at its current value, and
    again each time one of its parameters changes, for as long as `owner` (the callback the
    messages name) lives: a change that would put it out of bounds is refused with the same message.
    A `tb.Trainable` is accepted where the callback reads the argument as a tensor (``trainable=True``,
    with `tb.bending.trainable.amount`); elsewhere it is a TypeError.
    """
    who = _name(owner)
    if isinstance(value, Trainable):
        if trainable:
            return value
        raise TypeError(
            f"{who}: {name} cannot be learned (a tb.Trainable): it is not read as a tensor; the "
            "arguments that can are Scale(scale), Bias(bias) and Affine(scale, bias)"
        )
    if not isinstance(value, LiveValue) and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise TypeError(
            f"{who}: {name} must be a number or a tb.BendingParameter, got {value!r} ({type(value).__name__})"
        )

    def check() -> None:
        current = value_of(value)
        if isinstance(current, bool) or not isinstance(current, (int, float)) or not math.isfinite(current):
            raise ValueError(f"{who}: {name} must be a number (not NaN or infinite), got {current!r}")
        if integer and not float(current).is_integer():
            raise ValueError(f"{who}: {name} must be a whole number, got {current!r}")
        if low is not None and high is not None:
            if current < low or (open_low and current == low) or current > high:
                raise ValueError(
                    f"{who}: {name} must be a number in {'(' if open_low else '['}{low}, {high}], got {current!r}"
                )
        elif low is not None and (current < low or (open_low and current == low)):
            raise ValueError(f"{who}: {name} must be {'>' if open_low else '>='} {low:g}, got {current:g}")
        elif high is not None and current > high:
            raise ValueError(f"{who}: {name} must be <= {high:g}, got {current:g}")

    keep_checked(owner, check, value)
    return value


def keep_checked(owner: Any, check: Callable[[], None], *values: Any) -> None:
    """Run `check()` now, and again whenever a parameter that one of `values` reads is about to change.

        >>> keep_checked(self, lambda: ..., self.lo, self.hi)     # e.g. lo <= hi, however either moves

    `check` reads the values (``float(self.lo)``) and raises ValueError to refuse; while it runs for
    a change, the changing parameter reads its new value. The re-checks last as long as `owner`.
    """
    check()
    sources = [source for value in values for source in sources_of(value)]
    if sources and isinstance(owner, str):
        raise TypeError(
            f"{owner}: a live value is checked again at each change for as long as its owner lives; "
            "pass the callback itself as the owner, not its name"
        )
    for source in sources:
        source.restrict(owner, _with_value(source, check))


def _with_value(source: BendingParameter, check: Callable[[], None]) -> Callable[[Any], None]:
    def recheck(new: Any) -> None:
        with frozen_values({source: new}):
            check()

    return recheck


def _name(owner: Any) -> str:
    return owner if isinstance(owner, str) else type(owner).__name__


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def spatial_rank(ndim: int) -> int:
    """Feature maps are the last two axes of a tensor of rank >= 4, the last axis of a lower rank."""
    return 2 if ndim >= 4 else 1
