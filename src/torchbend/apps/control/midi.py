"""MIDI control: control-change messages (0..127) scaled to bending parameters' ranges.

    >>> mapping = tb.control.midi(bended, {1: "gain", 74: "keep"})   # no port: feed it yourself
    >>> mapping.handle(mido.Message("control_change", control=1, value=64))
    >>> live = tb.control.midi(bended, {1: "gain"}, port="nanoKONTROL2")   # listen to a port

A CC value v maps to ``low + (high - low) * v / 127`` of the parameter's range (an int
rounds, a bool is ``v >= 64``). A parameter with an open range needs an explicit one:
``{1: ("gain", 0.0, 4.0)}``; explicit bounds must be finite and inside the parameter's range
(``high < low`` turns the knob around).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from ...extras import MissingExtraError, require
from .drive import parameter_of, set_fitted

log = logging.getLogger(__name__)


def _import_mido() -> Any:
    return require("mido", "midi", "for MIDI control")


def open_input(port: str, callback: Any) -> Any:
    """Open the MIDI input `port` through mido's backend (python-rtmidi, in ``torchbend[midi]``).

    A missing backend raises `MissingExtraError` naming ``pip install 'torchbend[midi]'``.
    """
    mido = _import_mido()
    try:
        return mido.open_input(port, callback=callback)
    except ImportError as error:  # mido imports its backend (rtmidi) only when a port is opened
        raise MissingExtraError(
            f"opening the MIDI port {port!r} needs a MIDI backend for mido "
            f"({error.name or error}) but it is not installed: "
            "pip install 'torchbend[midi]'"
        ) from error


def _check_bounds(cc: int, name: str, low: Any, high: Any, allowed: tuple[Any, Any]) -> None:
    """Explicit bounds of a mapping: finite numbers inside the parameter's range."""
    for bound in (low, high):
        if bound is None:
            continue
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
            raise ValueError(f"CC {cc} -> {name!r}: the bounds ({low!r}, {high!r}) must be finite numbers")
        if (allowed[0] is not None and bound < allowed[0]) or (allowed[1] is not None and bound > allowed[1]):
            raise ValueError(
                f"CC {cc} -> {name!r}: the bounds ({low!r}, {high!r}) leave the parameter's range "
                f"{allowed}; give bounds inside it"
            )


class MIDIMapping:
    """CC number -> parameter; `handle(message)` applies one message, `port` listens on a MIDI input."""

    def __init__(
        self, bended: Any, mapping: Mapping[int, Any], port: str | None = None, channel: int | None = None
    ) -> None:
        self.bended = bended
        self.channel = channel
        self.routes: dict[int, tuple[str, float, float]] = {}
        for cc, target in mapping.items():
            if not isinstance(cc, int) or not 0 <= cc <= 127:
                raise ValueError(f"a MIDI CC number is an int in 0..127, got {cc!r}")
            if not isinstance(target, str) and not (isinstance(target, (tuple, list)) and len(target) == 3):
                raise ValueError(f"CC {cc}: map it to a parameter name or to (name, low, high), got {target!r}")
            name, low, high = (target, None, None) if isinstance(target, str) else target
            param = parameter_of(bended, name)
            _check_bounds(cc, name, low, high, param.range)
            low = param.range[0] if low is None else low
            high = param.range[1] if high is None else high
            if param.type is bool:
                low, high = 0, 1
            if low is None or high is None:
                raise ValueError(
                    f"parameter {name!r} has the open range {param.range}; give one for CC {cc}: "
                    f"{{{cc}: ({name!r}, low, high)}}"
                )
            self.routes[cc] = (name, float(low), float(high))
        self._port = None
        if port is not None:
            self._port = open_input(port, self.handle)

    def value_for(self, cc: int, value: int) -> float | int | bool:
        """The parameter value a CC value gives."""
        name, low, high = self.routes[cc]
        param = parameter_of(self.bended, name)
        if param.type is bool:
            return value >= 64
        scaled = low + (high - low) * value / 127
        return int(round(scaled)) if param.type is int else scaled

    def handle(self, message: Any) -> bool:
        """Apply a mido message; returns whether it set a parameter. Other messages are ignored."""
        if getattr(message, "type", None) != "control_change":
            return False
        if self.channel is not None and message.channel != self.channel:
            return False
        if message.control not in self.routes:
            log.debug("MIDI CC %d is not mapped", message.control)
            return False
        name = self.routes[message.control][0]
        try:
            set_fitted(self.bended, name, self.value_for(message.control, message.value))
        except Exception as error:  # a bend removed since: log, keep listening
            log.warning("MIDI CC %d -> %r: %s", message.control, name, error)
            return False
        return True

    def stop(self) -> None:
        """Close the MIDI input port, if any."""
        if self._port is not None:
            self._port.close()
            self._port = None

    def __enter__(self) -> MIDIMapping:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        routes = ", ".join(f"CC{cc}->{name}" for cc, (name, _, _) in self.routes.items())
        return f"<MIDIMapping {routes}>"


def midi(bended: Any, mapping: Mapping[int, Any], port: str | None = None, channel: int | None = None) -> MIDIMapping:
    """Map MIDI CC numbers to bending parameters; with `port`, listen on that MIDI input.

    >>> m = tb.control.midi(bended, {1: "gain"})
    >>> m.handle(mido.Message("control_change", control=1, value=127))   # gain -> top of its range
    """
    return MIDIMapping(bended, mapping, port=port, channel=channel)
