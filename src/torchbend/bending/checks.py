"""Argument checks shared by the callbacks: one clear error naming the argument and its valid range.

    >>> check_number("Zoom", "factor", 0, low=0, low_open=True)
    Traceback (most recent call last):
    ValueError: Zoom: factor must be > 0, got 0
"""

from __future__ import annotations

import math
from typing import Any

from .parameter import LiveValue

PADDINGS = ("zeros", "reflection", "wrap")


def check_number(owner: str, name: str, value: Any, low: float | None = None, high: float | None = None,
                 low_open: bool = False, integer: bool = False) -> None:
    """Check a number or a live value's current value against ``[low, high]`` (``(low, ...`` with `low_open`)."""
    current = value.value if isinstance(value, LiveValue) else value
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        kind = "an int" if integer else "a number"
        raise TypeError(f"{owner}: {name} must be {kind} or a tb.BendingParameter, got {value!r}")
    if integer and not float(current).is_integer():
        raise TypeError(f"{owner}: {name} must be a whole number, got {current!r}")
    if not math.isfinite(current):
        raise ValueError(f"{owner}: {name} must be finite, got {current}")
    if low is not None and (current <= low if low_open else current < low):
        raise ValueError(f"{owner}: {name} must be {'>' if low_open else '>='} {low:g}, got {current:g}")
    if high is not None and current > high:
        raise ValueError(f"{owner}: {name} must be <= {high:g}, got {current:g}")


def check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


def spatial_rank(ndim: int) -> int:
    """Feature maps are the last two axes of a tensor of rank >= 4, the last axis of a lower rank."""
    return 2 if ndim >= 4 else 1
