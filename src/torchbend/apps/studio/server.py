"""Serving the studio page: a Panel server on a background thread, on 127.0.0.1 and behind a token.

    >>> server = serve(StudioState(bended, "decode", {"z": z}), port=0)
    >>> server.url                      # the page, as Jupyter does: the token opens it, once per browser
    'http://127.0.0.1:40123/?token=...'
    >>> server.stop()

A request (the page, its websocket) without the token, in the URL or in the cookie the page's first load
sets, gets 403. Other hosts than loopback are refused unless ``allow_remote=True`` (``--allow-remote``).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
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

    def __init__(
        self, state: StudioState, thread: threading.Thread, loop: Any, host: str, port: int, token: str
    ) -> None:
        self.state, self._thread, self._loop, self.host, self.port = state, thread, loop, host, port
        self.token = token
        self.url = f"http://{host}:{port}/?token={token}"

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

    def __repr__(self) -> str:  # without the token, which opens the page
        return f"<StudioServer http://{self.host}:{self.port}/>"


def check_host(host: str, allow_remote: bool = False) -> None:
    """Refuse to serve on an address other machines may reach, unless `allow_remote`.

    >>> check_host("127.0.0.1"); check_host("0.0.0.0", allow_remote=True)   # check_host("0.0.0.0"): ValueError
    """
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise ValueError(
            f"the studio serves on loopback (127.0.0.1) only: on {host!r} other machines could reach "
            "it; pass allow_remote=True (torchbend studio --allow-remote) to serve there (the page "
            "still asks for the token in its URL)"
        )


def _token_auth(token: str, cookie: str) -> Any:
    """A Bokeh auth provider letting in requests with ``?token=`` (which sets `cookie`) or with the cookie."""
    from bokeh.server.auth_provider import AuthProvider
    from tornado.web import HTTPError

    def same(given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), token.encode())

    async def user(handler: Any) -> str:
        if same(handler.get_query_argument("token", None)):
            handler.set_cookie(cookie, token, httponly=True, samesite="Strict")
            return "studio"
        if same(handler.get_cookie(cookie)):
            return "studio"
        raise HTTPError(403, reason="open the URL the studio printed: it holds the token")  # before any handler

    def refuse(handler: Any) -> str:
        raise HTTPError(403)

    class TokenAuth(AuthProvider):
        get_user_async = property(lambda self: user)
        get_login_url = property(lambda self: refuse)

    return TokenAuth()


def serve(
    state: StudioState,
    host: str = "127.0.0.1",
    port: int = 0,
    show: bool = False,
    timeout: float = 30.0,
    allow_remote: bool = False,
) -> StudioServer:
    """Serve the studio page for `state` on `host`:`port` in a background thread; returns once it answers.

    The page asks for a random token, in `StudioServer.url`; hosts other than loopback need `allow_remote`.
    """
    from tornado.ioloop import IOLoop

    from .app import StudioPage, _import_panel

    check_host(host, allow_remote)
    pn = _import_panel()
    pn.extension("tabulator")
    port = port or free_port(host)
    token = secrets.token_urlsafe(32)
    # remote browsers reach the server by names it cannot know: there the token cookie (which SameSite keeps
    # from other sites' pages) is the check, as it is everywhere for clients that send no Origin
    origins = ["*"] if allow_remote else [f"{host}:{port}", f"localhost:{port}"]
    loop = IOLoop(make_current=False)
    failure: list[BaseException] = []

    def page() -> Any:
        return StudioPage(state).layout

    def run() -> None:  # built on this thread, so Panel leaves the main thread's SIGINT handler alone
        try:
            server = pn.serve(
                {"/": page},
                address=host,
                port=port,
                show=False,
                threaded=False,
                start=False,
                loop=loop,
                title="torchbend studio",
                verbose=False,
                websocket_origin=origins,
                auth_provider=_token_auth(token, f"torchbend-studio-{port}"),
            )
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
                raise RuntimeError(
                    f"the studio server did not start on {host}:{port}" + (f": {failure[0]}" if failure else "")
                ) from None
            time.sleep(0.05)
    studio = StudioServer(state, thread, loop, host, port, token)
    if show:
        import webbrowser

        webbrowser.open(studio.url)
    return studio
