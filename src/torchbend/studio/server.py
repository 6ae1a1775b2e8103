"""Serving the studio page: a Panel server on a background thread, 127.0.0.1 by default.

    >>> server = serve(StudioState(bended, "decode", {"z": z}), port=0)
    >>> server.url
    'http://127.0.0.1:40123/'
    >>> server.stop()
"""

from __future__ import annotations

import socket
import sys
import time
from typing import Any

from .state import StudioState


def in_notebook() -> bool:
    """Whether we run inside a Jupyter kernel."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return bool(shell) and type(shell).__name__ == "ZMQInteractiveShell"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class StudioServer:
    """A running studio: `url`, the shared `state`, and `stop()` (also a context manager)."""

    def __init__(self, state: StudioState, thread: Any, host: str, port: int) -> None:
        self.state, self._thread, self.host, self.port = state, thread, host, port
        self.url = f"http://{host}:{port}/"

    def stop(self) -> None:
        """Stop serving, the renderer and any OSC / MIDI control."""
        self._thread.stop()
        self.state.close()

    def __enter__(self) -> StudioServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<StudioServer {self.url}>"


def serve(state: StudioState, host: str = "127.0.0.1", port: int = 0, show: bool = False,
          timeout: float = 30.0) -> StudioServer:
    """Serve the studio page for `state` on `host`:`port` in a background thread; returns once it answers."""
    from .app import StudioPage, _import_panel

    pn = _import_panel()
    pn.extension("tabulator")
    port = port or free_port(host)

    def page() -> Any:
        return StudioPage(state).layout

    thread = pn.serve({"/": page}, address=host, port=port, show=show, threaded=True, title="torchbend studio",
                      websocket_origin=[f"{host}:{port}", f"localhost:{port}"], verbose=False)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                thread.stop()
                raise RuntimeError(f"the studio server did not start on {host}:{port}") from None
            time.sleep(0.05)
    return StudioServer(state, thread, host, port)
