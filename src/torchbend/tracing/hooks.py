"""The fallback for a method that cannot be traced: module outputs, read and bent through hooks.

    >>> record = record_with_hooks(model, "generate", (x,), {}, error="...")
    >>> record.activation_names()            # one per submodule: "decoder_net_convt0", ...
    >>> program = HookedProgram(record, model, bends={"decoder_net_convt0": bend})
    >>> program.run((x,), {}, {})            # the method itself, with forward hooks in place

Activations are named like traced module calls (the module path with "." -> "_"); a bend
applies to every call of its module. Hooks are registered for the length of a call only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .record import ActivationInfo, MethodRecord, _info_of


class HookedMethod(MethodRecord):
    """A method known by its submodules' outputs, recorded on one call."""

    kind = "hooks"

    def __init__(self, name: str, activations: dict[str, ActivationInfo], modules: dict[str, str], error: str,
                 leaves: Sequence[str] = ()) -> None:
        super().__init__(name, activations, leaves)
        self.modules = modules  # activation name -> module path
        self.error = error  # why tracing failed

    @property
    def input_names(self) -> list[str]:
        return []

    def named_inputs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's keyword arguments, passed to the method as they are."""
        return dict(kwargs)


def record_with_hooks(module: torch.nn.Module, method: str, args: tuple, kwargs: dict, error: str,
                      leaves: Sequence[str] = ()) -> HookedMethod:
    """Run ``module.<method>`` once, recording each submodule's first output."""
    seen: dict[str, Any] = {}
    paths: dict[str, str] = {}
    handles = []
    for path, sub in module.named_modules():
        if not path:
            continue
        name = path.replace(".", "_")

        def hook(mod: torch.nn.Module, inputs: Any, output: Any, name: str = name) -> None:
            seen.setdefault(name, output)

        paths[name] = path
        handles.append(sub.register_forward_hook(hook))
    try:
        with torch.no_grad():
            getattr(module, method)(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    activations = {name: _info_of(name, "call_module", paths[name], seen[name]) for name in paths if name in seen}
    return HookedMethod(method, activations, {n: paths[n] for n in activations}, error, leaves)


class _StopRun(Exception):
    """Raised by a recording hook once every requested output is known."""


class HookedProgram:
    """Runs a hooked method with its bends, reading outputs (`outputs`) or replacing them (`cut`)."""

    def __init__(self, record: HookedMethod, module: torch.nn.Module, bends: Mapping[str, Any] | None = None,
                 outputs: Sequence[str] | None = None, after_bends: bool = False, cut: Sequence[str] = ()) -> None:
        self.record = record
        self.module = module
        self.bends = dict(bends or {})
        self.outputs = list(outputs) if outputs is not None else None
        self.after_bends = after_bends
        self.cut = list(cut)
        self.runtime_inputs = tuple(dict.fromkeys(k for bend in self.bends.values() for k in bend.inputs))
        self.input_names = self.cut + list(self.runtime_inputs)

    def _hooks(self, runtime: Mapping[str, Any], given: Mapping[str, Any], found: dict[str, Any]) -> list:
        handles = []
        for name, path in self.record.modules.items():
            steps = []
            if name in given:
                steps.append(lambda out, value=given[name]: value)
            if self.outputs is not None and name in self.outputs and not self.after_bends:
                steps.append(lambda out, name=name: self._record(found, name, out))
            if name in self.bends:
                bend = self.bends[name]
                steps.append(lambda out, bend=bend: bend(out, **{k: runtime[k] for k in bend.inputs if k in runtime}))
            if self.outputs is not None and name in self.outputs and self.after_bends:
                steps.append(lambda out, name=name: self._record(found, name, out))
            if steps:
                def hook(mod: torch.nn.Module, inputs: Any, output: Any, steps: list = steps) -> Any:
                    for step in steps:
                        output = step(output)
                    return output

                handles.append(self.module.get_submodule(path).register_forward_hook(hook))
        return handles

    def _record(self, found: dict[str, Any], name: str, output: Any) -> Any:
        found.setdefault(name, output)
        if self.outputs is not None and all(n in found for n in self.outputs):
            raise _StopRun
        return output

    def run(self, args: tuple, kwargs: dict, runtime: Mapping[str, Any]) -> Any:
        """Call the method with `args` and `kwargs`, bends in place."""
        return self._call(args, kwargs, runtime, {})

    def call_named(self, values: Mapping[str, Any]) -> Any:
        """Call with the method's arguments, cut activations and run-time inputs all given by name."""
        given = {n: values[n] for n in self.cut if n in values}
        runtime = {k: values[k] for k in self.runtime_inputs if k in values}
        kwargs = {k: v for k, v in values.items() if k not in given and k not in runtime}
        return self._call((), kwargs, runtime, given)

    def _call(self, args: tuple, kwargs: dict, runtime: Mapping[str, Any], given: Mapping[str, Any]) -> Any:
        found: dict[str, Any] = {}
        handles = self._hooks(runtime, given, found)
        try:
            out = getattr(self.module, self.record.name)(*args, **kwargs)
        except _StopRun:
            out = None
        finally:
            for handle in handles:
                handle.remove()
        if self.outputs is not None:
            return {name: found[name] for name in self.outputs if name in found}
        return out
