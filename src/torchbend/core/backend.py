"""Method backends: how one kind of model is recorded and run, beneath an engine written once for all kinds.

    >>> backend = backend_for(vae)                      # Python code: the fx tracer, hooks as the fallback
    >>> backend.kind, backend.has_method("decode")
    ('python', True)
    >>> record = backend.record("decode", (z,), {}, (), False, {}, backend.view({}, {}))
    >>> record.activation_names()[:2]
    ['z', 'decoder_mlp_0']
    >>> runner = backend.program(record, {}).bind(backend.view({}, {}))
    >>> torch.equal(runner.run((z,), {}, {}), vae.decode(z))
    True

A backend records a method (`record`), says where the weights of a call go (`view`: a
`ModuleView` holding bent tensors for Python code, tensors given as graph inputs for
TorchScript), builds the program running a method with a set of activation bends
(`program(...).bind(view)`) and runs a method it has not recorded (`untraced`). Names,
bends, parameters, snapshots, configs, versions, per-example values, tables and exports'
entry points live above it, in `torchbend.core` and `BendedModule`, once. `PythonBackend` serves
`nn.Module`s; `torchbend.torchscript.backend.ScriptBackend` serves TorchScript modules.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import nn

from ..errors import ColdStateError, TraceError
from ..runtime.view import ModuleView, parent_map
from ..runtime.weights import BentWeights, Entry
from ..tracing.hooks import record_with_hooks
from ..tracing.record import MethodRecord, TracedMethod, trace_method
from ..tracing.tracer import describe_failure, warn_at_user_code
from ..wrapper import listed_methods

if TYPE_CHECKING:
    from ..runtime import per_example
    from .bends import Steps
    from .engine import Engine
    from .snapshot import Snapshot

    WeightsAt = Callable[[dict[str, Steps], dict[Any, Any]], tuple[dict[str, torch.Tensor], dict[str, Entry]]]


class Runner(Protocol):
    """What runs one method on one snapshot."""

    runtime_inputs: tuple[str, ...]

    def run(self, args: tuple, kwargs: dict, runtime: dict) -> Any: ...


class PartRunner(Runner, Protocol):
    """What runs a traced method, or part of it, on one snapshot, from values by name."""

    program: Any

    def call_named(self, values: Mapping[str, Any]) -> Any: ...


class MethodBackend(Protocol):
    """One kind of model: how its methods are recorded and run with bends (see the module docstring)."""

    kind: str
    module: Any  # the wrapped model, never written

    @property
    def weights(self) -> BentWeights:
        """The model's bendable tensors by name, and the cache of their bent values."""

    @property
    def model_name(self) -> str: ...

    def methods(self) -> list[str]:
        """The model's own methods (those run bent when called through the bended module)."""

    def has_method(self, name: str) -> bool: ...

    def arguments(self, fn: str) -> list[str] | None:
        """The argument names of method `fn` (None when unknown)."""

    def record(
        self,
        fn: str,
        args: tuple,
        kwargs: dict,
        leaves: Sequence[str],
        retrace: bool,
        bends: dict[str, Callable[[Any], Any]],
        view: Any,
    ) -> MethodRecord:
        """Record `fn` on these inputs, running on `view` with the activation `bends` (callables by name)."""

    def recorded(self) -> None:
        """A method was (re-)recorded: forget what was cached about the model's structure."""

    def view(self, bases: Mapping[str, torch.Tensor], entries: Mapping[str, Entry]) -> Any:
        """What a call runs against: the weights of a version mix (`bases`) and the bent weights (`entries`)."""

    def program(self, record: MethodRecord, bends: Mapping[str, Any], **options: Any) -> Any:
        """The program of `record` with activation `bends` (`outputs`, `after_bends`, `cut`); ``.bind(view)``."""

    def untraced(self, view: Any, fn: str) -> Runner:
        """Method `fn`, not recorded, run with the view's weights."""

    def per_example_view(
        self,
        weights_at: WeightsAt,
        snapshot: Snapshot,
        groups: per_example.Groups,
        varying: dict[str, Steps],
        record: MethodRecord,
    ) -> Any:
        """A view giving each group of a per-example call its own weights (None: call once per group)."""

    def moved(self, device: torch.device | None, dtype: torch.dtype | None) -> None: ...

    def script(self, engine: Engine, methods: Sequence[str] | None) -> torch.jit.ScriptModule: ...

    def export_nntilde(
        self, engine: Engine, path: str | Path, methods: Mapping[str, Mapping[str, Any]] | None
    ) -> Path: ...

    def export(self, engine: Engine, path: str | Path, fn: str, args: tuple) -> Any: ...


def backend_for(module: Any) -> MethodBackend:
    """The backend serving `module`: `ScriptBackend` for a TorchScript module, else `PythonBackend`."""
    if isinstance(module, torch.jit.ScriptModule):
        from ..torchscript.backend import ScriptBackend

        return ScriptBackend(module)
    return PythonBackend(module)


# --- recorders of Python code: tried in order until one records the method ------------------------
def _record_graph(
    root: nn.Module,
    fn: str,
    args: tuple,
    kwargs: dict,
    leaves: Sequence[str],
    retrace: bool,
    bends: dict[str, Callable[[Any], Any]],
    failures: list[BaseException],
) -> MethodRecord:
    return trace_method(root, fn, args, kwargs, leaves, retrace, bends)


def _record_hooks(
    root: nn.Module,
    fn: str,
    args: tuple,
    kwargs: dict,
    leaves: Sequence[str],
    retrace: bool,
    bends: dict[str, Callable[[Any], Any]],
    failures: list[BaseException],
) -> MethodRecord:
    record = record_with_hooks(root, fn, args, kwargs, describe_failure(failures[0]), leaves, retrace)
    warn_at_user_code(
        f"torchbend: {fn} could not be traced ({record.error}); falling back to hooks: its "
        "activations are its submodules' outputs"
    )
    return record


RECORDERS: list[Callable[..., MethodRecord]] = [_record_graph, _record_hooks]


class _Untraced:
    """An untraced method: the module's own code, on the view (so it sees the bent weights)."""

    runtime_inputs: tuple[str, ...] = ()

    def __init__(self, view: ModuleView, fn: str) -> None:
        self.call = view.root if fn == "forward" else getattr(view.root, fn)

    def run(self, args: tuple, kwargs: dict, runtime: dict) -> Any:
        return self.call(*args, **kwargs)


def is_model_method(cls: type, name: str) -> bool:
    """True for `forward` and the methods a model defines; torch.nn.Module's own (`eval`,
    `state_dict`, ...) act on the module itself and are not run bent."""
    return name == "forward" or getattr(cls, name, None) is not getattr(nn.Module, name, None)


class PythonBackend:
    """Python modules: methods traced by the concrete-value fx tracer (module hooks as the fallback), run as
    generated Python against copy-on-write views holding the bent weights."""

    kind = "python"

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.weights = BentWeights(module)
        self._parents: dict[int, list[nn.Module]] | None = None
        self.listed = listed_methods(type(module))  # the class's __bended_methods__, checked now

    @property
    def model_name(self) -> str:
        return type(self.module).__name__

    def parents(self) -> dict[int, list[nn.Module]]:
        """The module tree's parent links (computed once; again after a trace)."""
        if self._parents is None:
            self._parents = parent_map(self.module)
        return self._parents

    def methods(self) -> list[str]:
        """The model's methods: those its class lists in ``__bended_methods__`` when it does, else all its own."""
        if self.listed is not None:
            return list(self.listed)
        cls = type(self.module)
        return [
            n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n, None)) and is_model_method(cls, n)
        ]

    def has_method(self, name: str) -> bool:
        cls = type(self.module)
        return name in (self.listed or ()) or callable(getattr(cls, name, None)) and is_model_method(cls, name)

    def arguments(self, fn: str) -> list[str] | None:
        method = getattr(self.module, fn, None)
        try:
            return list(inspect.signature(method).parameters) if method is not None else []
        except (TypeError, ValueError):
            return None

    def record(
        self,
        fn: str,
        args: tuple,
        kwargs: dict,
        leaves: Sequence[str],
        retrace: bool,
        bends: dict[str, Callable[[Any], Any]],
        view: ModuleView,
    ) -> MethodRecord:
        failures: list[BaseException] = []
        for recorder in RECORDERS:
            try:
                return recorder(view.root, fn, args, kwargs, leaves, retrace, bends, failures)
            except ColdStateError:
                raise  # no recorder can make the missing state: the user runs the method once first
            except Exception as error:  # the next recorder, or the first error if none works
                failures.append(error)
        first, last = failures[0], failures[-1]
        raise (first if isinstance(first, TraceError) or len(failures) == 1 else last) from None

    def recorded(self) -> None:
        self._parents = None
        self.weights.forget_structure()

    def view(self, bases: Mapping[str, torch.Tensor], entries: Mapping[str, Entry]) -> ModuleView:
        tensors = {slot: t for name, t in bases.items() for slot in self.weights.slots(name)}
        tensors.update({slot: e.bent for e in entries.values() for slot in e.slots})
        return ModuleView(self.module, tensors, parents=self.parents())

    def program(self, record: MethodRecord, bends: Mapping[str, Any], **options: Any) -> Any:
        return record.program(self.module, dict(bends), **options)

    def untraced(self, view: ModuleView, fn: str) -> Runner:
        return _Untraced(view, fn)

    def per_example_view(
        self,
        weights_at: WeightsAt,
        snapshot: Snapshot,
        groups: per_example.Groups,
        varying: dict[str, Steps],
        record: MethodRecord,
    ) -> ModuleView | None:
        """A view whose modules owning a per-example weight run each group with its own weights (None where
        the method reads such a weight outside its module's call, or the module keeps weights its own way)."""
        from ..runtime import per_example

        if not isinstance(record, TracedMethod):
            return None
        read = {node.target[2:] for node in record.graph.nodes if node.op == "get_attr"}
        if any(
            alias in read
            for name in varying
            if name not in self.weights.effective
            for alias in self.weights.aliases(name)
        ):
            return None
        per_group = [weights_at(varying, values)[1] for values in groups.values]
        tensors = dict(snapshot.view.tensors)
        stacked: dict[nn.Module, dict[tuple[str, str], torch.Tensor]] = {}
        for name in varying:
            entries = [group[name] for group in per_group]
            for slot in entries[0].slots:
                owner, store, key = slot
                if (
                    store not in ("_parameters", "_buffers")
                    or "_hf_hook" in owner.__dict__
                    or "_flat_weights_names" in owner.__dict__
                ):
                    return None
                tensors[slot] = entries[0].bent
                stacked.setdefault(owner, {})[(store, key)] = torch.stack([e.bent for e in entries])
        paths = {id(m): name for name, m in self.module.named_modules()}
        wrappers = {
            owner: per_example.vmapped_call(groups, held, paths.get(id(owner), "a submodule"))
            for owner, held in stacked.items()
        }
        return ModuleView(self.module, tensors, wrappers, parents=self.parents())

    def moved(self, device: torch.device | None, dtype: torch.dtype | None) -> None:
        pass

    def script(self, engine: Engine, methods: Sequence[str] | None) -> torch.jit.ScriptModule:
        from ..export.script import script

        return script(engine, methods)

    def export_nntilde(self, engine: Engine, path: str | Path, methods: Mapping[str, Mapping[str, Any]] | None) -> Path:
        from ..export.script import export_nntilde

        return export_nntilde(engine, path, methods or {})

    def export(self, engine: Engine, path: str | Path, fn: str, args: tuple) -> Any:
        from ..export.torch_export import export

        return export(engine, path, fn, *args)


__all__ = ["MethodBackend", "PartRunner", "PythonBackend", "RECORDERS", "Runner", "backend_for", "is_model_method"]
