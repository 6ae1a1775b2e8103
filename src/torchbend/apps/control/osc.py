"""OSC control: messages ``/torchbend/<parameter> <value>`` set bending parameters.

    >>> server = tb.control.osc(bended, port=0)       # port 0: a free port, see server.port
    >>> server.port
    57121
    >>> server.stop()                                 # or use it as a context manager

Messages are handled one at a time in the order they arrive, so the last value sent is the one
that stays. A bundle's messages apply when it arrives: its time tag is ignored, so a bundle dated
in the future cannot hold up the messages after it. Unknown addresses, values that are not one
number and values outside the parameter's range are logged (logger ``torchbend.apps.control.osc``, with
control characters escaped) and ignored; the server keeps running. `stop` returns within about a
second.
"""

from __future__ import annotations

import logging
import math
import socket
import sys
import threading
from typing import Any

from .drive import parameter_of

log = logging.getLogger(__name__)
PREFIX = "/torchbend/"
POLL = 0.05  # seconds between checks for stop() while no message comes


def _shown(value: Any, limit: int = 120) -> str:
    """`value` for a log line: control characters escaped (no forged lines), at most `limit` characters."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _import_osc() -> Any:
    try:
        from pythonosc import dispatcher, osc_server
    except ImportError as error:
        raise ImportError("OSC control needs python-osc: pip install torchbend[control]") from error
    return dispatcher, osc_server


class OSCServer:
    """A UDP OSC server on a daemon thread mapping ``/torchbend/<name> <value>`` to ``bended.update``,
    one message at a time in arrival order."""

    def __init__(self, bended: Any, port: int = 9000, host: str = "127.0.0.1", prefix: str = PREFIX) -> None:
        dispatcher, osc_server = _import_osc()
        self.bended = bended
        self.prefix = prefix if prefix.endswith("/") else prefix + "/"
        self.received = 0
        self.last: dict[str, Any] = {}
        routes = dispatcher.Dispatcher(strict_timing=False)  # never sleep until a bundle's time tag
        routes.set_default_handler(self._on_message)
        self._server = osc_server.BlockingOSCUDPServer((host, port), routes, timeout=POLL)
        self._server.handle_error = self._on_error  # one log line, not a traceback on stderr per packet
        # room for bursts while a render holds the CPU (the kernel may cap it lower)
        self._server.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.host, self.port = self._server.server_address[:2]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"torchbend-osc-{self.port}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            self._server.handle_request()  # one message, or none after POLL seconds

    def _on_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        log.warning(
            "OSC packet from %s ignored: %s", _shown(client_address), _shown(f"{type(error).__name__}: {error}")
        )

    def _on_message(self, address: str, *args: Any) -> None:
        self.handle(address, *args)  # python-osc sends back whatever a handler returns: return nothing

    def handle(self, address: str, *args: Any) -> bool:
        """Apply one message; returns whether it set a parameter (else logs why not)."""
        self.received += 1
        if not address.startswith(self.prefix):
            log.warning(
                "OSC %s: not a torchbend address (expected %s<parameter>)", _shown(address), _shown(self.prefix)
            )
            return False
        name = address[len(self.prefix) :]
        if len(args) != 1 or isinstance(args[0], (str, bytes)) or args[0] is None:
            log.warning("OSC %s: expected one number, got %s", _shown(address), _shown(repr(args)))
            return False
        try:
            param = parameter_of(self.bended, name)
            value = args[0]
            if not math.isfinite(value):
                raise ValueError(f"{value!r} is not a finite number")
            if param.type is bool:
                value = bool(value)
            self.bended.update(name, value)  # range- and type-checked: a bad value raises, nothing changes
        except Exception as error:  # unknown parameter, out of range, NaN...: log and keep serving
            log.warning("OSC %s %s: %s", _shown(address), _shown(repr(args[0])), _shown(error, 400))
            return False
        self.last[name] = value
        return True

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop serving and close the socket; returns within about a second."""
        self._stopping.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout=1.0)
        if self._thread.is_alive():  # a message is still being applied: its thread ends right after it
            log.warning("OSC server on port %d: stopped while a message was being applied", self.port)
        self._server.server_close()

    def __enter__(self) -> OSCServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<OSCServer udp://{self.host}:{self.port}{self.prefix}* {'running' if self.running else 'stopped'}>"


def osc(bended: Any, port: int = 9000, host: str = "127.0.0.1", prefix: str = PREFIX) -> OSCServer:
    """Serve OSC on `host`:`port` (UDP) and map ``/torchbend/<parameter> <value>`` to ``bended.update``.

    >>> with tb.control.osc(bended, port=9000):
    ...     ...   # send /torchbend/gain 0.5 from any OSC client
    """
    return OSCServer(bended, port=port, host=host, prefix=prefix)
