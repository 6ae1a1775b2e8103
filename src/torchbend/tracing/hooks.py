"""The fallback for a method that cannot be traced: module outputs, read and bent by wrapping module calls.

    >>> record = record_with_hooks(vae, "decode", (z,), {}, error="(why tracing failed)")
    >>> record.activation_names()[:3]        # one per submodule that ran
    ['decoder', 'decoder_mlp', 'decoder_mlp_0']
    >>> from torchbend.runtime.program import ActivationBend
    >>> program = HookedProgram(record, vae, bends={"decoder_net_convt0": ActivationBend([(tb.Scale(0), None)])})
    >>> out = program.bind(ModuleView(vae)).run((z,), {}, {})   # the method itself, on a view

Activations are named like traced module calls (the module path with "." -> "_"); a bend
applies to every call of its module, to the module's output after its own hooks. The
wrapped calls live on copies of the submodules (`ModuleView`), so the model itself never
sees them, and what one call reads or is given travels in a context variable, so calls
from several threads do not mix.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..errors import BendingError
from ..runtime.program import number_inputs
from ..runtime.view import ModuleView, isolated_view
from .record import ActivationInfo, MethodRecord, _info_of


class HookedMethod(MethodRecord):
    """A method known by its submodules' outputs, recorded on one call."""

    kind = "hooks"

    def __init__(
        self,
        name: str,
        activations: dict[str, ActivationInfo],
        modules: dict[str, str],
        error: str,
        leaves: Sequence[str] = (),
        retrace: bool = False,
    ) -> None:
        super().__init__(name, activations, leaves, retrace)
        self.modules = modules  # activation name -> module path
        self.error = error  # why tracing failed

    @property
    def input_names(self) -> list[str]:
        return []

    def named_inputs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's keyword arguments, passed to the method as they are."""
        return dict(kwargs)

    def named_arguments(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        if args:
            raise BendingError(f"{self.name} fell back to hooks: give its arguments by keyword")
        return dict(kwargs)

    def program(self, module: torch.nn.Module, bends: Mapping[str, Any] | None = None, **options: Any) -> HookedProgram:
        return HookedProgram(self, module, bends, **options)

    def describe(self) -> list[list[str]]:
        return [
            ["mode", self.kind, f"module outputs through wrapped calls; tracing failed: {self.error}"],
            *super().describe()[1:],
        ]


def record_with_hooks(
    module: torch.nn.Module,
    method: str,
    args: tuple,
    kwargs: dict,
    error: str,
    leaves: Sequence[str] = (),
    retrace: bool = False,
) -> HookedMethod:
    """Run ``module.<method>`` once on a view, recording each submodule's first output."""
    seen: dict[str, Any] = {}
    paths: dict[str, str] = {}
    wrappers = {}
    for path, sub in module.named_modules():
        if not path:
            continue
        name = path.replace(".", "_")

        def record(copy: torch.nn.Module, call: Callable, *a: Any, name: str = name, **k: Any) -> Any:
            out = call(*a, **k)
            seen.setdefault(name, out)
            return out

        paths[name] = path
        wrappers[sub] = record
    view = isolated_view(module, wrappers)  # what the run writes (buffers, caches) stays on the view
    with torch.no_grad():
        getattr(view.root, method)(*args, **kwargs)
    activations = {name: _info_of(name, "call_module", paths[name], seen[name]) for name in paths if name in seen}
    return HookedMethod(method, activations, {n: paths[n] for n in activations}, error, leaves, retrace)


class _StopRun(Exception):
    """Raised by a wrapped call once every requested output is known."""


@dataclass
class _Call:
    runtime: Mapping[str, Any]
    given: Mapping[str, Any]
    found: dict[str, Any] = field(default_factory=dict)


_CURRENT: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("torchbend_hooked_call", default=None)


class HookedProgram:
    """Runs a hooked method with its bends, reading outputs (`outputs`) or replacing them (`cut`)."""

    def __init__(
        self,
        record: HookedMethod,
        module: torch.nn.Module,
        bends: Mapping[str, Any] | None = None,
        outputs: Sequence[str] | None = None,
        after_bends: bool = False,
        cut: Sequence[str] = (),
    ) -> None:
        self.record = record
        self.module = module
        self.bends = dict(bends or {})
        number_inputs(self.bends)
        self.outputs = list(outputs) if outputs is not None else None
        self.after_bends = after_bends
        self.cut = list(cut)
        self.runtime_inputs = tuple(dict.fromkeys(k for bend in self.bends.values() for k in bend.inputs))
        self.input_names = self.cut + list(self.runtime_inputs)
        involved = set(self.bends) | set(self.cut) | set(self.outputs or ())
        self.wrappers = {
            module.get_submodule(path): self._wrapper(name) for name, path in record.modules.items() if name in involved
        }

    def _wrapper(self, name: str) -> Callable[..., Any]:
        bend = self.bends.get(name)
        read = self.outputs is not None and name in self.outputs
        cut = name in self.cut

        def wrapper(copy: torch.nn.Module, call: Callable, *args: Any, **kwargs: Any) -> Any:
            state = _CURRENT.get()
            if state is None:  # called outside a bended call (e.g. kept by user code): behave plainly
                return call(*args, **kwargs)
            out = state.given[name] if cut and name in state.given else call(*args, **kwargs)
            if read and not self.after_bends:
                self._found(state, name, out)
            if bend is not None:
                out = bend(out, **{k: state.runtime[k] for k in bend.inputs if k in state.runtime})
            if read and self.after_bends:
                self._found(state, name, out)
            return out

        return wrapper

    def _found(self, state: _Call, name: str, output: Any) -> None:
        state.found.setdefault(name, output)
        assert self.outputs is not None  # only called for a value read out (`read`: outputs were asked for)
        if all(n in state.found for n in self.outputs):
            raise _StopRun

    def bind(self, view: ModuleView) -> BoundHookedProgram:
        """This program running on a view with `view`'s tensors and this program's wrapped calls."""
        return BoundHookedProgram(self, ModuleView(view.original, view.tensors, self.wrappers))


class BoundHookedProgram:
    """A hooked program and the view it runs on."""

    def __init__(self, program: HookedProgram, view: ModuleView) -> None:
        self.program = program
        self.view = view
        self.runtime_inputs = program.runtime_inputs

    def run(self, args: tuple, kwargs: dict, runtime: Mapping[str, Any]) -> Any:
        """Call the method with `args` and `kwargs`, bends in place."""
        return self._call(args, kwargs, _Call(runtime, {}))

    def call_named(self, values: Mapping[str, Any]) -> Any:
        """Call with the method's arguments, cut activations and run-time inputs all given by name."""
        program = self.program
        given = {n: values[n] for n in program.cut if n in values}
        runtime = {k: values[k] for k in program.runtime_inputs if k in values}
        kwargs = {k: v for k, v in values.items() if k not in given and k not in runtime}
        return self._call((), kwargs, _Call(runtime, given))

    def _call(self, args: tuple, kwargs: dict, state: _Call) -> Any:
        token = _CURRENT.set(state)
        try:
            out = getattr(self.view.root, self.program.record.name)(*args, **kwargs)
        except _StopRun:
            out = None
        finally:
            _CURRENT.reset(token)
        if self.program.outputs is not None:
            return {name: state.found[name] for name in self.program.outputs if name in state.found}
        return out
