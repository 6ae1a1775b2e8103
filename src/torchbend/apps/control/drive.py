"""Drive bending parameters from modulators: live on a daemon thread, or offline on a sample clock.

    >>> import torchbend as tb
    >>> with tb.control.drive(bended, "gain", tb.LFO(0.5), rate=100):   # 100 updates a second
    ...     play(bended)                                                  # another thread renders
    >>> for t in tb.control.offline(bended, {"gain": lfo}, duration=4.0, step=0.5):
    ...     frames.append(bended.decode(z))                               # "gain" set for time t

Values are clamped to the parameter's range (an int parameter rounds, a bool is ``value >= 0.5``).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from ...bending.parameter import BendingParameter, LiveValue
from .modulators import modulation_at

log = logging.getLogger(__name__)
MAX_RATE = 10_000.0  # updates per second; more would only spin a core


def fit_to_parameter(param: BendingParameter, value: float) -> float | int | bool:
    """`value` made valid for `param`: clamped to its range, rounded for an int, thresholded for a bool."""
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"parameter {param.name!r}: cannot set NaN")
    low, high = param.range
    if low is not None:
        value = max(value, float(low))
    if high is not None:
        value = min(value, float(high))
    if param.type is bool:
        return value >= 0.5
    if param.type is int:
        rounded = round(value)
        if low is not None and rounded < low:
            rounded = math.ceil(low)
        if high is not None and rounded > high:
            rounded = math.floor(high)
        return int(rounded)
    return value


def parameter_of(bended: Any, name: str) -> BendingParameter:
    """The bending parameter `name` in use by `bended` (error lists the names in use)."""
    params = bended.controllables
    if name not in params:
        from ...naming import unknown_name

        raise unknown_name(name, list(params), "bending parameter")
    return params[name]


def set_fitted(bended: Any, name: str, value: float) -> float | int | bool:
    """``bended.update(name, value)`` with the value clamped to the parameter's range; returns what was set."""
    fitted = fit_to_parameter(parameter_of(bended, name), value)
    bended.update(name, fitted)
    return fitted


class Driver:
    """A daemon thread that sets one parameter from a modulator `rate` times a second; see `drive`."""

    def __init__(self, bended: Any, name: str, source: LiveValue, rate: float = 100.0) -> None:
        if not 1e-3 <= rate <= MAX_RATE:  # also refuses NaN, and inf (a busy loop)
            raise ValueError(f"rate is in updates per second, from 0.001 to {MAX_RATE:g}; got {rate!r}")
        parameter_of(bended, name)  # fail now on an unknown name
        self.bended, self.name, self.source, self.rate = bended, name, source, float(rate)
        self.updates = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"torchbend-drive-{name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        period = 1.0 / self.rate
        while not self._stop.is_set():
            try:
                set_fitted(self.bended, self.name, float(self.source))
                self.updates += 1
            except Exception as error:  # a removed bend, a bad value: report and keep the thread alive
                log.warning("drive %r: %s", self.name, error)
            self._stop.wait(period)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop updating (the parameter keeps its last value); waits for the thread."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    def __enter__(self) -> Driver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Driver {self.name!r} <- {self.source!r} at {self.rate:g} Hz, {state}>"


def drive(bended: Any, name: str, source: LiveValue, rate: float = 100.0) -> Driver:
    """Set parameter `name` of `bended` from `source` (a modulator or any live value) `rate` times a second.

    >>> driver = tb.control.drive(bended, "gain", tb.LFO(2.0, depth=0.5, offset=1.0))
    >>> driver.stop()
    """
    return Driver(bended, name, source, rate)


def set_at(bended: Any, sources: Mapping[str, Any], t: float) -> dict[str, float | int | bool]:
    """Set each parameter from its modulator's value at time `t` (sample clock); returns what was set.

    >>> tb.control.set_at(bended, {"gain": lfo}, t=1.5)
    """
    return {name: set_fitted(bended, name, modulation_at(source, t)) for name, source in sources.items()}


def offline(
    bended: Any, sources: Mapping[str, Any], duration: float, step: float, start: float = 0.0
) -> Iterator[float]:
    """For offline renders: yields times ``start, start + step, ...`` below ``start + duration``, with the
    parameters set from their modulators at each time before it is yielded.

        >>> for t in tb.control.offline(bended, {"gain": lfo}, duration=2.0, step=512 / 44100):
        ...     chunks.append(bended.forward(x_chunk))
    """
    if not 0 < step < math.inf:
        raise ValueError(f"step is in seconds and must be a finite number > 0, got {step!r}")
    if not 0 <= duration < math.inf:
        raise ValueError(f"duration is in seconds and must be a finite number >= 0, got {duration!r}")
    for name in sources:
        parameter_of(bended, name)
    count = math.ceil(duration / step - 1e-9)
    for i in range(count):
        t = start + i * step
        set_at(bended, sources, t)
        yield t
