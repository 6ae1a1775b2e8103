"""Curves of values for sweeps and animations: `linear`, `sine`, `keyframes`.

>>> tb.curves.linear(0, 1, 3)
[0.0, 0.5, 1.0]
>>> tb.curves.keyframes([(0, 0), (1, 10), (2, 0)], 5)
[0.0, 5.0, 10.0, 5.0, 0.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def linear(start: float, stop: float, n: int) -> list[float]:
    """`n` evenly spaced values from `start` to `stop`, both included."""
    return np.linspace(float(start), float(stop), int(n)).tolist()


def sine(center: float, amplitude: float, n: int, periods: float = 1.0) -> list[float]:
    """`n` values of ``center + amplitude * sin(2 pi periods t)`` for t in [0, 1): a seamless loop."""
    return [center + amplitude * math.sin(2 * math.pi * periods * i / n) for i in range(int(n))]


def keyframes(points: Sequence[tuple[float, float]], n: int) -> list[float]:
    """`n` values through the (time, value) `points`, linearly interpolated between them."""
    if len(points) < 2:
        raise ValueError("keyframes needs at least two (time, value) points")
    times, values = zip(*sorted(points))
    return np.interp(np.linspace(times[0], times[-1], int(n)), times, values).tolist()
