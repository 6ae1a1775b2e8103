"""The studio's controller: everything the page does, as plain Python (no browser needed).

    >>> state = StudioState(bended, "decode", {"z": z})
    >>> state.add_bend("Mask", "decoder_net_convt1", args={"seed": 0}, live={"prob": (0.0, 1.0)})
    >>> state.set_parameter("mask_prob", 0.7)      # re-renders on the worker, newest value wins
    >>> state.wait().output.shape

The page binds to this object; tests drive it directly. All model access goes through the
public `BendedModule` API.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import os
import stat
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ...bending.callback import BendingCallback
from ...bending.parameter import BendingParameter
from ...config import BendingConfig
from ...errors import ConfigError, UnknownNameError
from ...naming import untrusted_patterns
from ..control.drive import set_fitted
from . import catalog
from .render import Renderer, Result
from .views import View, output_view


@dataclass
class BendEntry:
    """A bend as the studio lists it: the callback, its targets, and whether it is in effect."""

    callback: BendingCallback
    targets: list[str]
    fn: str | None
    handle: Any = None  # the `Bend` while enabled, else None

    @property
    def enabled(self) -> bool:
        return self.handle is not None

    @property
    def label(self) -> str:
        return f"{type(self.callback).__name__} on {', '.join(self.targets)}"


class StudioState:
    """Layers, callbacks, bends, parameters, renders and exports of one bended method."""

    def __init__(
        self,
        bended: Any,
        fn: str,
        inputs: Mapping[str, Any],
        out_dir: str | Path = ".",
        sample_rate: int = 44100,
        decode_tokens: Callable[[list[int]], str] | None = None,
    ) -> None:
        self.bended = bended
        self.fn = fn
        self.inputs = dict(inputs)
        self.out_dir = Path(out_dir)
        self.sample_rate = sample_rate
        self.decode_tokens = decode_tokens
        try:
            bended.activation_names(fn=fn)
        except Exception:  # not traced yet
            bended.trace(fn, **self.inputs)
        self._lock = threading.RLock()
        self.entries: list[BendEntry] = [
            BendEntry(b.callback, [t.qualified for t in b.targets], None, b) for b in bended.bends
        ]
        self.rows = catalog.layer_rows(bended, fn)
        self.controls: dict[str, Any] = {}  # "osc" / "midi" -> the running server or mapping
        self._listeners: list[Callable[[str], None]] = []
        self._plain: View | None = None
        self.renderer = Renderer(self._render)

    # --- listing ------------------------------------------------------------------------------
    def search(self, query: str = "") -> list[dict[str, Any]]:
        """Activations and weights matching `query` (words, case-insensitive), grouped by submodule order."""
        return catalog.search_rows(self.rows, query)

    def matches(self, pattern: str) -> list[str]:
        """The activation and weight names a target pattern (exact name or regex) selects; [] if none.

        Matched as text from the page (`naming.safe_pattern`): a pattern that could freeze the process
        raises `BendingError`, as does an invalid one.
        """
        found = []
        with untrusted_patterns():
            for resolve in (
                lambda: self.bended.resolve_activations(pattern, fn=self.fn),
                lambda: self.bended.resolve_parameters(pattern),
            ):
                try:
                    found += resolve()
                except UnknownNameError:
                    pass
        return found

    @staticmethod
    def callbacks() -> list[str]:
        return sorted(catalog.callback_choices())

    @staticmethod
    def functions() -> list[str]:
        return sorted(catalog.function_choices())

    @staticmethod
    def fields(callback: str) -> list[catalog.Field]:
        choices = catalog.callback_choices()
        if callback not in choices:
            raise ValueError(f"unknown callback {callback!r}; registered: {', '.join(sorted(choices))}")
        return catalog.callback_fields(choices[callback])

    # --- bending ------------------------------------------------------------------------------
    def add_bend(
        self,
        callback: str,
        targets: str | Sequence[str],
        args: Mapping[str, Any] | None = None,
        live: Mapping[str, tuple[float, float] | tuple[float, float, str]] | None = None,
    ) -> BendEntry:
        """Bend `targets` (names or regexes, matched as text from the page) with the registered `callback`.

        `live` maps argument names to ``(low, high)`` or ``(low, high, parameter_name)``: those
        arguments become `BendingParameter`s (sliders), starting at the value in `args` or the default.
        Text arguments are Python literals (``"(1, 2)"``); a function argument names a registered function.
        """
        fields = {f.name: f for f in self.fields(callback)}
        args = dict(args or {})
        for name in list(args) + list(live or {}):
            if name not in fields:
                raise ValueError(f"{callback} takes no argument {name!r}; it takes {', '.join(fields) or 'none'}")
        kwargs = {name: self._argument(fields[name], value) for name, value in args.items()}
        for name, spec in (live or {}).items():
            field = fields[name]
            if not field.live:
                raise ValueError(f"{callback}.{name} cannot be live (it is read once, when the bend is made)")
            low, high, *rest = spec
            start = kwargs.get(name, field.default)
            if start is inspect.Parameter.empty:
                start = low
            pname = rest[0] if rest else self._fresh_name(f"{callback.lower()}_{name}")
            kind = int if field.kind == "int" else bool if field.kind == "bool" else float
            start = min(max(kind(start), kind(low)), kind(high))
            kwargs[name] = BendingParameter(pname, start, range=(kind(low), kind(high)))
        missing = [f.name for f in fields.values() if f.required and f.name not in kwargs]
        if missing:
            raise ValueError(f"{callback} needs {', '.join(missing)}")
        cb = catalog.callback_choices()[callback](**kwargs)
        names = [targets] if isinstance(targets, str) else list(targets)
        with self._lock, untrusted_patterns():
            handle = self.bended.bend(cb, *names, fn=self.fn)
            entry = BendEntry(cb, [t.qualified for t in handle.targets], self.fn, handle)
            self.entries.append(entry)
        self._changed("bends")
        return entry

    def _argument(self, field: catalog.Field, value: Any) -> Any:
        if field.kind == "function":
            functions = catalog.function_choices()
            if callable(value):
                return value
            if value not in functions:
                raise ValueError(
                    f"{field.name}: no registered function {value!r}; "
                    f"registered: {', '.join(sorted(functions)) or 'none (tb.register_callback)'}"
                )
            return functions[value]
        if field.kind == "text" and isinstance(value, str):
            try:
                return ast.literal_eval(value) if value.strip() else None
            except (ValueError, SyntaxError):
                raise ValueError(f"{field.name}: {value!r} is not a Python literal (e.g. 1, (1, 2), None)") from None
        if field.kind in ("float", "int", "bool") and value is not None:
            return {"float": float, "int": int, "bool": bool}[field.kind](value)
        return value

    def _fresh_name(self, base: str) -> str:
        taken = set(self.bended.controllables) | {p.name for e in self.entries for p in e.callback.live_parameters()}
        return next(n for n in itertools.chain([base], (f"{base}_{i}" for i in itertools.count(2))) if n not in taken)

    def set_enabled(self, index: int, enabled: bool) -> None:
        """Turn bend `index` on or off, keeping its place in the order bends compose."""
        with self._lock:
            entry = self.entries[index]
            if entry.enabled == enabled:
                return
            later = [e for e in self.entries[index + 1 :] if e.enabled]
            for e in reversed(later):
                e.handle.remove()
                e.handle = None
            if enabled:
                entry.handle = self.bended.bend(entry.callback, *entry.targets, fn=entry.fn)
            else:
                entry.handle.remove()
                entry.handle = None
            for e in later:
                e.handle = self.bended.bend(e.callback, *e.targets, fn=e.fn)
        self._changed("bends")

    def remove_bend(self, index: int) -> None:
        """Remove bend `index` from the model and from the list."""
        with self._lock:
            entry = self.entries.pop(index)
            if entry.handle is not None:
                entry.handle.remove()
        self._changed("bends")

    @property
    def parameters(self) -> dict[str, BendingParameter]:
        """The live parameters of the bends in effect."""
        return self.bended.controllables

    def set_parameter(self, name: str, value: float) -> Any:
        """Set a parameter (clamped to its range) and ask for a render; returns the value set."""
        fitted = set_fitted(self.bended, name, value)
        self.renderer.request()
        return fitted

    # --- configs and exports -----------------------------------------------------------------
    def config_file(self, name: str) -> Path:
        """The path of the file `name` in `out_dir`: a plain file name, as typed on the page.

            >>> state.config_file("glitch.json")            # out_dir / "glitch.json"

        Folders, ``..``, absolute paths, and links leading out of `out_dir` raise `ValueError` naming the folder.
        """
        folder = self.out_dir.resolve()
        text = str(name)
        if (
            not text
            or text in (".", "..")
            or Path(text).name != text
            or "\\" in text
            or "\0" in text
            or (folder / text).resolve().parent != folder
        ):
            raise ValueError(
                f"{text!r} is not a file name in {folder}: configs are saved and loaded in that "
                "folder only (a name such as bends.json, without folders or '..')"
            )
        return folder / text

    @staticmethod
    def _is_file(path: Path) -> bool:
        """Whether `path` exists; raises `ValueError` if it is not a regular file (a pipe, a folder)."""
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            return False
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path} is not a regular file")
        return True

    def save_config(self, name: str, overwrite: bool = False) -> Path:
        """Save the bends in effect as the `BendingConfig` JSON file `name` in `out_dir`; returns its path.

        An existing file is replaced only with ``overwrite=True`` (else `FileExistsError`).
        """
        path = self.config_file(name)
        if self._is_file(path) and not overwrite:
            raise FileExistsError(f"{path} exists; tick 'overwrite' (overwrite=True) to replace it")
        config = self.bended.bending_config()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        try:
            config.save(path, overwrite=overwrite)
        except FileExistsError:  # made meanwhile
            raise FileExistsError(f"{path} exists; tick 'overwrite' (overwrite=True) to replace it") from None
        return path

    def load_config(self, name: str) -> list[BendEntry]:
        """Apply the bends of the config file `name` in `out_dir` (all or none) and list them.

        Reads a regular file only (never a pipe or a device); it blocks, so the page calls it on a worker thread.
        """
        path = self.config_file(name)
        if not self._is_file(path):
            raise ConfigError(f"no file {path.name!r} in {path.parent}")
        config = BendingConfig.load(path)
        with self._lock:
            group = self.bended.bend(config)
            added = [BendEntry(b.callback, [t.qualified for t in b.targets], None, b) for b in group.bends]
            self.entries += added
        self._changed("bends")
        return added

    def export_script(self, path: str | Path = "bended.ts") -> Path:
        """Write the bent model as TorchScript (``bended.script()``, ``torch.jit.save``); returns the path."""
        path = self._path(path)
        scripted = self.bended.script()
        torch.jit.save(scripted, str(path))
        return path

    def export_nntilde(
        self, path: str | Path = "bended-nntilde.ts", methods: Mapping[str, Mapping[str, Any]] | None = None
    ) -> Path:
        """Write an nn~ model (``bended.export_nntilde``); `methods` as that method takes them."""
        path = self._path(path)
        self.bended.export_nntilde(str(path), dict(methods or {}))
        return path

    def _path(self, path: str | Path) -> Path:
        path = Path(path)
        path = (path if path.is_absolute() else self.out_dir / path).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    # --- live control -------------------------------------------------------------------------
    def start_osc(self, port: int = 0, host: str = "127.0.0.1") -> Any:
        """Serve OSC (``/torchbend/<parameter> <value>``); each message also asks for a render."""
        from ..control.osc import OSCServer

        self.stop_control("osc")
        state = self

        class _RenderingServer(OSCServer):
            def handle(self, address: str, *args: Any) -> bool:
                done = super().handle(address, *args)
                if done:
                    state.renderer.request()
                return done

        self.controls["osc"] = _RenderingServer(self.bended, port=port, host=host)
        self._changed("controls")
        return self.controls["osc"]

    def start_midi(self, mapping: Mapping[int, Any], port: str | None = None) -> Any:
        """Map MIDI CCs to parameters (see `tb.control.midi`); each mapped message asks for a render."""
        from ..control.midi import MIDIMapping

        self.stop_control("midi")
        state = self

        class _RenderingMapping(MIDIMapping):
            def handle(self, message: Any) -> bool:
                done = super().handle(message)
                if done:
                    state.renderer.request()
                return done

        self.controls["midi"] = _RenderingMapping(self.bended, mapping, port=port)
        self._changed("controls")
        return self.controls["midi"]

    def stop_control(self, kind: str) -> None:
        control = self.controls.pop(kind, None)
        if control is not None:
            control.stop()
            self._changed("controls")

    def control_lines(self) -> list[str]:
        """One line per running control: what it is and where it listens."""
        return [repr(c) for c in self.controls.values()]

    # --- rendering ----------------------------------------------------------------------------
    def _render(self) -> View:
        with torch.no_grad():  # bent calls are thread-safe: exports and plain calls may run meanwhile
            out = getattr(self.bended, self.fn)(**self.inputs)
        return output_view(out, self.sample_rate, self.decode_tokens)

    def request_render(self) -> int:
        return self.renderer.request()

    def wait(self, timeout: float = 30.0) -> Result | None:
        """Ask for a render of the current state and wait for it."""
        return self.renderer.wait(self.renderer.request(), timeout)

    def plain_view(self) -> View:
        """The unbent output (the wrapped module's own method; computed once)."""
        if self._plain is None:
            module = self.bended.module
            method = module if self.fn == "forward" else getattr(module, self.fn)
            with torch.no_grad():
                out = method(**self.inputs)
            self._plain = output_view(out, self.sample_rate, self.decode_tokens)
        return self._plain

    def subscribe(self, listener: Callable[[str], None]) -> None:
        """Call `listener(what)` when "bends" or "controls" change (parameters: see the renderer)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[str], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _changed(self, what: str) -> None:
        self.renderer.request()
        for listener in list(self._listeners):
            listener(what)

    def close(self) -> None:
        """Stop the renderer and any OSC / MIDI control."""
        for kind in list(self.controls):
            self.stop_control(kind)
        self.renderer.stop()
