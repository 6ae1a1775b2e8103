"""Modulators: values that move with time, to drive bending parameters.

    >>> import torchbend as tb
    >>> lfo = tb.LFO(2.0, shape="sine", depth=0.5, offset=0.5)   # 2 Hz between 0 and 1
    >>> lfo.at(0.125)                                             # its value at t = 0.125 s
    1.0
    >>> wobble = 0.1 * lfo + 0.2                                   # arithmetic gives live expressions

A modulator is a `LiveValue`: ``mod.value`` (or ``float(mod)``) is its value now, on a wall
clock started when the modulator was made (``mod.restart()`` starts it again); ``mod.at(t)`` is
its value at ``t`` seconds, for offline renders on a sample clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

from ...bending.parameter import BendingParameter, Expression, LiveValue

SHAPES = ("sine", "triangle", "square", "saw")
CURVES = ("linear", "exponential", "smooth")


class Modulator(LiveValue):
    """Base class: subclasses implement ``at(t)``; ``value`` is ``at(seconds since start)``."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def restart(self) -> None:
        """Start the wall clock again from t = 0."""
        self._start = time.monotonic()

    def now(self) -> float:
        """Seconds on this modulator's wall clock."""
        return time.monotonic() - self._start

    def at(self, t: float) -> float:
        raise NotImplementedError

    @property
    def value(self) -> float:
        return self.at(self.now())

    def sources(self) -> Iterator[BendingParameter]:
        return iter(())


def modulation_at(value: Any, t: float) -> Any:
    """The value of a modulator, or of an expression over modulators, at time `t` (sample clock)."""
    if isinstance(value, Modulator):
        return value.at(t)
    if isinstance(value, Expression):
        return value.op(*(modulation_at(o, t) for o in value.operands))
    if isinstance(value, LiveValue):
        return value.value
    return value


def _positive(name: str, value: float, allow_zero: bool = False) -> float:
    value = float(value)
    if value < 0 or (value == 0 and not allow_zero) or not math.isfinite(value):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return value


class LFO(Modulator):
    """A periodic value: ``offset + depth * wave(rate_hz * t + phase)``, the wave in [-1, 1].

        >>> tb.LFO(1.0, "triangle").at(0.25)
        1.0

    `phase` is in cycles (0.25 = a quarter period). At phase 0 the sine and the triangle are at 0
    rising, the square at +1 and the saw at -1 (rising to +1).
    """

    def __init__(
        self, rate_hz: float, shape: str = "sine", depth: float = 1.0, offset: float = 0.0, phase: float = 0.0
    ) -> None:
        super().__init__()
        if shape not in SHAPES:
            raise ValueError(f"unknown LFO shape {shape!r}; choose one of {', '.join(SHAPES)}")
        self.rate_hz = _positive("rate_hz", rate_hz)
        self.shape = shape
        self.depth = float(depth)
        self.offset = float(offset)
        self.phase = float(phase)

    def at(self, t: float) -> float:
        cycle = (self.rate_hz * t + self.phase) % 1.0
        if self.shape == "sine":
            wave = math.sin(2 * math.pi * cycle)
        elif self.shape == "triangle":  # 0 -> 1 -> 0 -> -1 -> 0, like the sine
            wave = 4 * cycle if cycle < 0.25 else (2 - 4 * cycle if cycle < 0.75 else 4 * cycle - 4)
        elif self.shape == "square":
            wave = 1.0 if cycle < 0.5 else -1.0
        else:  # saw: -1 rising to 1
            wave = 2 * cycle - 1
        return self.offset + self.depth * wave

    def __repr__(self) -> str:
        return (
            f"LFO({self.rate_hz}, shape={self.shape!r}, depth={self.depth}, offset={self.offset}, phase={self.phase})"
        )


class Ramp(Modulator):
    """From `start` to `end` over `duration` seconds, then holds `end`.

        >>> tb.Ramp(0.0, 1.0, 2.0).at(1.0)
        0.5

    `curve`: "linear", "exponential" (equal ratios per second; start and end of the same sign,
    non-zero) or "smooth" (smoothstep: eases in and out).
    """

    def __init__(self, start: float, end: float, duration: float, curve: str = "linear") -> None:
        super().__init__()
        if curve not in CURVES:
            raise ValueError(f"unknown ramp curve {curve!r}; choose one of {', '.join(CURVES)}")
        if curve == "exponential" and (start * end <= 0):
            raise ValueError(f"an exponential ramp needs start and end of the same sign, non-zero; got {start}, {end}")
        self.start, self.end = float(start), float(end)
        self.duration = _positive("duration", duration, allow_zero=True)
        self.curve = curve

    def at(self, t: float) -> float:
        x = 1.0 if self.duration == 0 else min(max(t / self.duration, 0.0), 1.0)
        if self.curve == "exponential":
            return self.start * (self.end / self.start) ** x
        if self.curve == "smooth":
            x = x * x * (3 - 2 * x)
        return self.start + (self.end - self.start) * x

    def __repr__(self) -> str:
        return f"Ramp({self.start}, {self.end}, {self.duration}, curve={self.curve!r})"


class Envelope(Modulator):
    """An ADSR envelope between `low` and `peak`, opened by ``gate_on()`` and closed by ``gate_off()``.

        >>> env = tb.Envelope(attack=0.1, decay=0.2, sustain=0.5, release=0.3)
        >>> env.at(0.05, gate_on_at=0.0)                       # half-way up the attack
        0.5
        >>> env.at(1.15, gate_on_at=0.0, gate_off_at=1.0)      # half-way down the release
        0.25

    Linear segments; times in seconds. On the wall clock ``value`` follows the gate calls
    (``low`` before the first ``gate_on``). On the sample clock pass the gate times to ``at``.
    """

    def __init__(
        self, attack: float, decay: float, sustain: float, release: float, peak: float = 1.0, low: float = 0.0
    ) -> None:
        super().__init__()
        self.attack = _positive("attack", attack, allow_zero=True)
        self.decay = _positive("decay", decay, allow_zero=True)
        self.release = _positive("release", release, allow_zero=True)
        if not 0.0 <= sustain <= 1.0:
            raise ValueError(f"sustain is a level between 0 and 1 (of low..peak), got {sustain!r}")
        self.sustain = float(sustain)
        self.peak, self.low = float(peak), float(low)
        self._lock = threading.Lock()
        self._on: float | None = None
        self._off: float | None = None

    def gate_on(self) -> None:
        """Start the attack now (wall clock)."""
        with self._lock:
            self._on, self._off = self.now(), None

    def gate_off(self) -> None:
        """Start the release now (wall clock)."""
        with self._lock:
            if self._on is not None and self._off is None:
                self._off = self.now()

    @property
    def value(self) -> float:
        with self._lock:
            on, off = self._on, self._off
        if on is None:
            return self.low
        return self.at(self.now(), gate_on_at=on, gate_off_at=off)

    def _held(self, dt: float) -> float:
        """Level (0..1) `dt` seconds after the gate opened, the gate still open."""
        if dt < self.attack:
            return dt / self.attack
        dt -= self.attack
        if dt < self.decay:
            return 1.0 - (1.0 - self.sustain) * dt / self.decay
        return self.sustain

    def at(self, t: float, gate_on_at: float = 0.0, gate_off_at: float | None = None) -> float:
        if t < gate_on_at:
            level = 0.0
        elif gate_off_at is None or t < gate_off_at:
            level = self._held(t - gate_on_at)
        else:
            start = self._held(max(gate_off_at - gate_on_at, 0.0))
            dt = t - gate_off_at
            level = 0.0 if dt >= self.release else start * (1.0 - dt / self.release)
        return self.low + (self.peak - self.low) * level

    def __repr__(self) -> str:
        return (
            f"Envelope(attack={self.attack}, decay={self.decay}, sustain={self.sustain}, "
            f"release={self.release}, peak={self.peak}, low={self.low})"
        )
