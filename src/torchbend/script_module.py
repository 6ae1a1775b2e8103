"""Bending a TorchScript file (a RAVE or nn~ model) without its training code.

    >>> bent = tb.BentScriptModule(torch.jit.load("rave.ts"))
    >>> bent.trace("decode", z)                               # shapes of every value of `decode`
    >>> bent.activation_names("decode")[:3]                   # ['z.1', 'decoder.net.0:input.1', ...]
    >>> bent.bend_weight("decoder.net.0.weight", tb.Scale(tb.BendingParameter("gain", 1.5)))
    >>> bent.bend_activation("decode", "decoder.net.1:input.3", tb.Bias(0.1))
    >>> y = bent.decode(z)                                    # bent; the loaded module is never written
    >>> bent.script().save("bent.ts")                         # with get_gain / set_gain

Calls run on a private copy of the module (its caches live there too); bent weights are
given to the rewritten graphs as inputs, recomputed only when a bend or a parameter changes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from .bending.callback import BendingCallback
from .bending.parameter import normal_name
from .bending.target import Target
from .errors import BendingError, UnknownNameError
from .naming import closest_names, pattern_matches, split_method, unknown_name
from .tracing.program import ActivationBend
from .tracing.torchscript import ScriptMethod, ScriptProgram, private_copy


class BentScriptModule:
    """A loaded TorchScript module, bent by name: weights, and values of its methods' graphs."""

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        if not isinstance(scripted, torch.jit.ScriptModule):
            raise TypeError(f"BentScriptModule takes a TorchScript module (torch.jit.load / torch.jit.script), "
                            f"got {type(scripted).__name__}; use tb.BendedModule for a Python module")
        self.module = scripted
        self._own = private_copy(scripted)
        self._tensors = dict(scripted.named_parameters()) | dict(scripted.named_buffers())
        self._methods: dict[str, ScriptMethod] = {}
        self._weight_bends: list[tuple[str, BendingCallback, Any]] = []
        self._activation_bends: dict[str, dict[str, list[tuple[BendingCallback, Any]]]] = {}
        self._programs: dict[str, ScriptProgram] = {}
        self._bent_weights: tuple[tuple, dict[str, torch.Tensor]] | None = None
        self._weight_parameters: list = []  # the live parameters the weight bends read
        self._lock = threading.RLock()

    # --- recording ---------------------------------------------------------------------------------
    def method(self, fn: str) -> ScriptMethod:
        with self._lock:
            if fn not in self._methods:
                self._methods[fn] = ScriptMethod(self._own, fn)
            return self._methods[fn]

    def trace(self, fn: str, *args: Any, **kwargs: Any) -> ScriptMethod:
        """Record the shapes of method `fn`'s values from one example call."""
        record = self.method(fn)
        record.trace(args, kwargs)
        return record

    def activation_names(self, fn: str = "forward") -> list[str]:
        return self.method(fn).activation_names()

    @property
    def weight_names(self) -> list[str]:
        return list(dict(self.module.named_parameters()))

    @property
    def traced_methods(self) -> list[str]:
        return [fn for fn, record in self._methods.items()
                if any(info.shape is not None for info in record.activations.values())]

    def resolve_targets(self, *patterns: str, fn: str | None = None) -> tuple[list[str], list[tuple[str, str]]]:
        """The weights and (method, value) activations that `patterns` name: exact names, else regular
        expressions matched whole; ``"decode:<pattern>"`` names values of one method only."""
        tensors = list(self._tensors)
        weights: list[str] = []
        activations: list[tuple[str, str]] = []
        methods = [fn] if fn is not None else self.traced_methods
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise TypeError(f"bend targets are names or patterns, got {type(pattern).__name__}")
            method, body = split_method(pattern)
            if method is not None and hasattr(self.module, method):
                acts = [(method, a) for a in pattern_matches(body, self.method(method).activation_names())]
                if not acts:
                    raise unknown_name(body, self.method(method).activation_names(), f"value of {method}")
                activations += [a for a in acts if a not in activations]
                continue
            hits = pattern_matches(pattern, tensors)
            acts = [(m, a) for m in methods for a in pattern_matches(pattern, self.method(m).activation_names())]
            if not hits and not acts:
                names = tensors + [a for m in methods for a in self.method(m).activation_names()]
                raise unknown_name(pattern, names, "weight or value")
            weights += [w for w in hits if w not in weights]
            activations += [a for a in acts if a not in activations]
        return weights, activations

    # --- bending -----------------------------------------------------------------------------------
    def bend(self, callback: BendingCallback, *targets: str, fn: str | None = None) -> ScriptBend:
        """Bend every weight and value `targets` name (as `resolve_targets`); returns the bend, whose
        `remove()` undoes it. Values of a method need it traced first (`trace(fn, *example)`)."""
        if not isinstance(callback, BendingCallback):
            raise TypeError(f"bend takes a callback first (tb.Scale(2), ...), got {type(callback).__name__}")
        if not targets:
            raise BendingError("bend needs at least one target: a weight name, a value name or a pattern")
        weights, activations = self.resolve_targets(*targets, fn=fn)
        handle = ScriptBend(self, callback, weights, activations)
        try:
            for name in weights:
                handle.entries.append(self.bend_weight(name, callback))
            for method, name in activations:
                handle.entries.append(self.bend_activation(method, name, callback))
        except Exception:
            handle.remove()
            raise
        return handle

    def _remove(self, entries: list[tuple]) -> None:
        def kept(entry: tuple) -> bool:
            return not any(entry is e for e in entries)

        with self._lock:
            self._weight_bends = [b for b in self._weight_bends if kept(b)]
            for values in self._activation_bends.values():
                for name in list(values):
                    values[name] = [step for step in values[name] if kept(step)]
                    if not values[name]:
                        del values[name]
            self._weight_parameters = list(dict.fromkeys(p for _, cb, _ in self._weight_bends
                                                         for p in cb.live_parameters()))
            self._programs.clear()
            self._bent_weights = None

    @property
    def controllables(self) -> dict[str, Any]:
        """The bending parameters in use, by name."""
        callbacks = [cb for _, cb, _ in self._weight_bends]
        callbacks += [cb for values in self._activation_bends.values() for steps in values.values() for cb, _ in steps]
        return {p.name: p for cb in callbacks for p in cb.live_parameters()}

    def update(self, name: str, value: float | int | bool) -> None:
        """Set the bending parameter `name` (takes effect from the next call)."""
        params, name = self.controllables, normal_name(name)
        if name not in params:
            raise unknown_name(name, list(params), "bending parameter")
        params[name].value = value

    def bend_weight(self, name: str, callback: BendingCallback) -> tuple:
        """Bend the weight (or buffer) `name` by `callback`, after the bends already on it."""
        if name not in self._tensors:
            raise UnknownNameError(f"no weight {name!r}; closest: {closest_names(name, list(self._tensors))}")
        if not callback.can_bend("weight"):
            raise BendingError(f"{type(callback).__name__} cannot bend weights")
        w = self._tensors[name]
        state = callback.setup(Target(name, "weight", tuple(w.shape), w.dtype, w.device))
        entry = (name, callback, state)
        with self._lock:
            self._weight_bends.append(entry)
            self._weight_parameters += [p for p in callback.live_parameters() if p not in self._weight_parameters]
            self._programs.clear()
            self._bent_weights = None
        return entry

    def bend_activation(self, fn: str, name: str, callback: BendingCallback) -> tuple:
        """Bend the value `name` of method `fn` by `callback` (the method must be traced)."""
        record = self.method(fn)
        record.check(name, "bend")
        info = record.activations[name]
        if info.shape is None:
            raise BendingError(f"trace {fn!r} first (bent.trace({fn!r}, *example)) to bend its values")
        if not callback.can_bend("activation"):
            raise BendingError(f"{type(callback).__name__} cannot bend activations")
        state = callback.setup(Target(f"{fn}:{name}", "activation", info.shape, info.dtype, info.device))
        entry = (callback, state)
        with self._lock:
            self._activation_bends.setdefault(fn, {}).setdefault(name, []).append(entry)
            self._programs.pop(fn, None)
        return entry

    def reset(self) -> None:
        """Remove every bend."""
        with self._lock:
            self._weight_bends.clear()
            self._activation_bends.clear()
            self._programs.clear()
            self._bent_weights = None
            self._weight_parameters = []

    # --- running -----------------------------------------------------------------------------------
    def _bends(self, fn: str) -> dict[str, ActivationBend]:
        return {name: ActivationBend(steps) for name, steps in self._activation_bends.get(fn, {}).items()}

    def _weights(self) -> dict[str, torch.Tensor]:
        """The bent weights, recomputed when a parameter they read has changed."""
        key = tuple(p.value for p in self._weight_parameters)
        cached = self._bent_weights
        if cached is not None and cached[0] == key:
            return cached[1]
        with self._lock:
            key = tuple(p.value for p in self._weight_parameters)
            bent: dict[str, torch.Tensor] = {}
            with torch.no_grad():
                for name, cb, state in self._weight_bends:
                    bent[name] = cb.forward(bent.get(name, self._tensors[name].detach()), state)
            self._bent_weights = (key, bent)
            return bent

    def _program(self, fn: str) -> ScriptProgram:
        with self._lock:
            if fn not in self._programs:
                self._programs[fn] = self.method(fn).program(self._bends(fn), weights=self._weight_names(fn))
            return self._programs[fn]

    def call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        """Call method `fn` with its bends; keyword arguments named by callbacks are their run-time inputs."""
        if "per_example" in kwargs:
            raise BendingError("per_example values are not supported on TorchScript files: call once per value "
                               "(bent.update(name, value)), or load the model's Python code in a tb.BendedModule")
        if not self._weight_bends and not self._activation_bends.get(fn):  # nothing bent: the copy's own method
            with torch.no_grad():
                return getattr(self._own, fn)(*args, **kwargs)
        program = self._program(fn)
        runtime = {k: kwargs.pop(k) for k in program.runtime_inputs if k in kwargs}
        with torch.no_grad():
            return program.run(args, kwargs, runtime, self._weights())

    def __getattr__(self, fn: str) -> Any:
        if fn.startswith("_") or not hasattr(self.module, fn):
            raise AttributeError(f"{type(self).__name__} has no attribute {fn!r}, nor has the TorchScript module")

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.call(fn, *args, **kwargs)

        self.__dict__[fn] = call  # found directly from now on
        return call

    def get_activations(self, names: str | Sequence[str], *args: Any, fn: str = "forward",
                        after_bends: bool = False, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The values `names` of method `fn` on this call, stopping once they are known."""
        names = [names] if isinstance(names, str) else list(names)
        program = self.method(fn).program(self._bends(fn), outputs=names, after_bends=after_bends,
                                          weights=self._weight_names(fn))
        record = self.method(fn)
        values = dict(zip(record.input_names, args)) | kwargs
        with torch.no_grad():
            return program.call_named(values, self._weights())

    def from_activations(self, fn: str = "forward", **values: Any) -> Any:
        """Run method `fn` from the given values (by name) on; other keywords are its arguments."""
        record = self.method(fn)
        cut = [name for name in values if name not in record.input_names]
        cut = [name for name in cut if name not in self._runtime_names(fn)]
        program = record.program(self._bends(fn), cut=cut, weights=self._weight_names(fn))
        with torch.no_grad():
            return program.call_named(values, self._weights())

    def _weight_names(self, fn: str) -> list[str]:
        reads = self.method(fn).weights
        return [w for w in dict.fromkeys(name for name, _, _ in self._weight_bends) if w in reads]

    def _runtime_names(self, fn: str) -> set[str]:
        return {k for bend in self._bends(fn).values() for k in bend.inputs}

    # --- export ------------------------------------------------------------------------------------
    def _steps(self) -> tuple[dict, dict]:
        weights: dict[str, list] = {}
        for name, cb, state in self._weight_bends:
            weights.setdefault(name, []).append((cb, state))
        return weights, {fn: dict(b) for fn, b in self._activation_bends.items()}

    def script(self) -> torch.jit.ScriptModule:
        """A bent copy of the whole module with ``get_<p>``/``set_<p>`` per bending parameter."""
        from .export.torchscript_export import bent_script

        with self._lock:
            return bent_script(self.module, *self._steps())[0]

    def export_nntilde(self, path: str | Path) -> Path:
        """Write the bent copy of an nn~ module to `path`, its bending parameters as nn~ attributes."""
        from .export.torchscript_export import bent_script, register_nntilde_attributes, save

        with self._lock:
            out, parameters = bent_script(self.module, *self._steps())
        register_nntilde_attributes(out, parameters)
        return save(out, path)


class ScriptBend:
    """One `BentScriptModule.bend`: its callback, weights and (method, value) activations; `remove()` undoes it
    (also on leaving a ``with`` block)."""

    def __init__(self, owner: BentScriptModule, callback: BendingCallback, weights: list[str],
                 activations: list[tuple[str, str]]) -> None:
        self._owner, self.callback, self.weights, self.activations = owner, callback, weights, activations
        self.entries: list[tuple] = []  # what the owner holds for this bend

    def remove(self) -> None:
        self._owner._remove(self.entries)
        self.entries = []

    def __enter__(self) -> ScriptBend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __repr__(self) -> str:
        names = self.weights + [f"{m}:{a}" for m, a in self.activations]
        return f"ScriptBend({self.callback!r} on {', '.join(names)})"
