"""Serving the studio page: a Panel server on a background thread, 127.0.0.1 by default.

    >>> server = serve(StudioState(bended, "decode", {"z": z}), port=0)
    >>> server.url
    'http://127.0.0.1:40123/'
    >>> server.stop()
"""

from __future__ import annotations

import socket
import sys
import threading
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
    """A running studio: `url`, the shared `state`, and `stop()` (also a context manager).

    The server runs on a daemon thread: it never keeps the interpreter alive on its own (the
    ``torchbend studio`` command blocks until Ctrl-C; a script that wants the page up waits itself).
    """

    def __init__(self, state: StudioState, thread: threading.Thread, loop: Any, host: str, port: int) -> None:
        self.state, self._thread, self._loop, self.host, self.port = state, thread, loop, host, port
        self.url = f"http://{host}:{port}/"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving (waiting up to `timeout` seconds), the renderer and any OSC / MIDI control."""
        if self._thread.is_alive():
            self._loop.add_callback(self._loop.stop)  # thread-safe; the thread stops the server after
            self._thread.join(timeout)
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
    from tornado.ioloop import IOLoop

    from .app import StudioPage, _import_panel

    pn = _import_panel()
    pn.extension("tabulator")
    port = port or free_port(host)
    loop = IOLoop(make_current=False)
    failure: list[BaseException] = []

    def page() -> Any:
        return StudioPage(state).layout

    def run() -> None:  # built on this thread, so Panel leaves the main thread's SIGINT handler alone
        try:
            server = pn.serve({"/": page}, address=host, port=port, show=show, threaded=False, start=False,
                              loop=loop, title="torchbend studio", verbose=False,
                              websocket_origin=[f"{host}:{port}", f"localhost:{port}"])
        except BaseException as error:  # reported by serve() below
            failure.append(error)
            return
        server.start()
        loop.start()  # until stop()
        server.stop()
        loop.close(all_fds=True)

    thread = threading.Thread(target=run, name=f"torchbend-studio-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                break
        except OSError:
            if failure or not thread.is_alive() or time.monotonic() > deadline:
                if thread.is_alive():
                    loop.add_callback(loop.stop)
                raise RuntimeError(f"the studio server did not start on {host}:{port}"
                                   + (f": {failure[0]}" if failure else "")) from None
            time.sleep(0.05)
    return StudioServer(state, thread, loop, host, port)
