"""Renders on a worker thread, newest request wins: slider moves never queue stale renders.

>>> renderer = Renderer(lambda: bended.decode(z=z), on_done=show)
>>> renderer.request()          # returns at once; `show(result)` is called from the worker
>>> renderer.stop()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Result:
    """One finished render: its number, the output (or the error) and how long it took."""

    version: int
    output: Any = None
    error: BaseException | None = None
    seconds: float = 0.0


class Renderer:
    """Runs `render()` on a daemon thread whenever requested; requests made during a render
    collapse into one render after it. `on_done(result)` is called on the worker thread."""

    def __init__(self, render: Callable[[], Any], on_done: Callable[[Result], None] | None = None) -> None:
        self._render = render
        self._listeners: list[Callable[[Result], None]] = [on_done] if on_done else []
        self._wake = threading.Condition()
        self._requested = 0  # number of the newest request
        self._done = 0  # number of the request the latest finished render served
        self._stopped = False
        self.latest: Result | None = None
        self.renders = 0
        self._thread = threading.Thread(target=self._loop, name="torchbend-studio-render", daemon=True)
        self._thread.start()

    def subscribe(self, listener: Callable[[Result], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[Result], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def request(self) -> int:
        """Ask for a render of the current state; returns the request's number."""
        with self._wake:
            self._requested += 1
            self._wake.notify()
            return self._requested

    def wait(self, request: int | None = None, timeout: float | None = 30.0) -> Result | None:
        """Block until a render that started after request `request` (default: the newest) is done."""
        with self._wake:
            target = self._requested if request is None else request
            self._wake.wait_for(lambda: self._done >= target or self._stopped, timeout)
            return self.latest

    def _loop(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._requested > self._done or self._stopped)
                if self._stopped:
                    return
                serving = self._requested
            start = time.perf_counter()
            try:
                result = Result(serving, output=self._render())
            except Exception as error:  # shown on the page; the worker keeps going
                log.warning("render failed: %s", error)
                result = Result(serving, error=error)
            result.seconds = time.perf_counter() - start
            with self._wake:
                self.latest = result
                self.renders += 1
                self._done = serving
                self._wake.notify_all()
            for listener in list(self._listeners):
                try:
                    listener(result)
                except Exception:
                    log.exception("render listener failed")

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join()
