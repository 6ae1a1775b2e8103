"""The TorchScript backend: a loaded TorchScript module (a RAVE or nn~ file) bent by `BendedModule`.

    >>> scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU()))
    >>> bended = tb.BendedModule(scripted)              # a BendedModule over a ScriptBackend
    >>> bended.engine.backend.kind
    'torchscript'
    >>> bended.trace("forward", torch.randn(2, 3))
    >>> bended.activation_names()
    ['input.1', '0:input0.1', '1:result.3']
    >>> b = bended.bend(tb.Scale(0.0), "0.weight", "0.bias")
    >>> bended(torch.randn(2, 3)).abs().sum().item()
    0.0

Methods are recorded from their TorchScript graphs (`torchbend.torchscript.graph.ScriptMethod`):
an activation is a value of a method's inlined graph, named ``<module path>:<debug name>``. Calls run
on a private copy of the module (its caches advance there; the loaded module is never written), the
bent weights and the weights of a version mix given to the rewritten graph as inputs. Activation bends
are compiled into the graph from their callbacks' TorchScript forms (as `script()` exports them), and
run as Python calls where a callback has none.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import BendingError, ExportError, TraceError
from ..runtime.weights import BentWeights, Entry, _stamp
from ..tracing.record import MethodRecord
from .graph import ScriptMethod, ScriptProgram, ScriptView, private_copy

if TYPE_CHECKING:
    from ..core.backend import Runner, WeightsAt
    from ..core.bends import Steps
    from ..core.engine import Engine
    from ..core.snapshot import Snapshot
    from ..runtime import per_example


class _Named:
    """Where a TorchScript module's tensors are found by name (what `Entry.current` checks)."""

    def __init__(self, tensors: dict[str, torch.Tensor]) -> None:
        self.tensors = tensors


class ScriptWeights(BentWeights):
    """The parameters and buffers of a TorchScript module by name, and the cache of their bent values."""

    def __init__(self, module: torch.jit.ScriptModule) -> None:
        super().__init__(module)
        self._tensors = dict(module.named_buffers()) | dict(module.named_parameters())
        self._holder = _Named(self._tensors)

    def refresh(self) -> None:
        """Read the module's tensors again (after `.to()` replaced them); bent values are recomputed."""
        self._tensors.clear()
        self._tensors.update(dict(self.module.named_buffers()) | dict(self.module.named_parameters()))

    @property
    def effective(self) -> dict:
        return {}

    def _own(self, name: str) -> torch.Tensor:
        try:
            return self._tensors[name]
        except KeyError:
            raise AttributeError(f"the TorchScript module has no parameter or buffer {name!r}") from None

    def slots(self, name: str) -> tuple:
        return ()

    def _checks(self, name: str, slots: tuple) -> tuple:
        tensor = self._own(name)
        return ((self._holder, "tensors", name, tensor, _stamp(tensor)),)

    def aliases(self, name: str) -> list[str]:
        target = self._own(name)
        return [n for n, t in self._tensors.items() if t is target]


class ScriptBackend:
    """TorchScript modules: methods recorded from their graphs and run as rewritten graphs (see the module
    docstring)."""

    kind = "torchscript"

    def __init__(self, module: torch.jit.ScriptModule) -> None:
        if not isinstance(module, torch.jit.ScriptModule):
            raise TypeError(
                f"ScriptBackend takes a TorchScript module (torch.jit.load / torch.jit.script), got "
                f"{type(module).__name__}"
            )
        self.module = module
        self.own = private_copy(module)  # what calls run on
        self.weights = ScriptWeights(module)
        self._methods = [n for n in module._c._method_names() if not n.startswith("__")]
        self._untraced: dict[str, ScriptProgram] = {}
        self._lock = threading.Lock()

    @property
    def model_name(self) -> str:
        return getattr(self.module, "original_name", type(self.module).__name__)

    def methods(self) -> list[str]:
        return list(self._methods)

    def has_method(self, name: str) -> bool:
        return name in self._methods

    def arguments(self, fn: str) -> list[str] | None:
        return [a.name for a in getattr(self.module, fn).schema.arguments[1:]] if fn in self._methods else None

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
        if leaves:
            raise TraceError(
                "leaves keep submodules of Python code whole; a TorchScript method is recorded from "
                "its graph, without leaves"
            )
        record = ScriptMethod(self.own, fn)
        record.retrace = retrace
        record.trace(args, kwargs)
        return record

    def recorded(self) -> None:
        pass

    def view(self, bases: Mapping[str, torch.Tensor], entries: Mapping[str, Entry]) -> ScriptView:
        tensors = {alias: t for name, t in bases.items() for alias in self.weights.aliases(name)}
        tensors.update({alias: e.bent for name, e in entries.items() for alias in self.weights.aliases(name)})
        return ScriptView(tensors)

    def program(self, record: MethodRecord, bends: Mapping[str, Any], **options: Any) -> ScriptProgram:
        from ..export.torchscript_export import compile_bend

        if not isinstance(record, ScriptMethod):
            raise BendingError(f"{record.name} was not recorded from the TorchScript module")
        return ScriptProgram(record, bends, compiler=compile_bend, **options)

    def untraced(self, view: ScriptView, fn: str) -> Runner:
        program = self._untraced.get(fn)
        if program is None:
            with self._lock:
                program = self._untraced.get(fn)
                if program is None:
                    if fn not in self._methods:
                        raise AttributeError(
                            f"the TorchScript module has no method {fn!r}; its methods: {', '.join(self._methods)}"
                        )
                    program = self._untraced[fn] = ScriptProgram(ScriptMethod(self.own, fn))
        return program.bind(view)

    def per_example_view(
        self,
        weights_at: WeightsAt,
        snapshot: Snapshot,
        groups: per_example.Groups,
        varying: dict[str, Steps],
        record: MethodRecord,
    ) -> None:
        return None  # weights varying per example: the method runs once per group

    def moved(self, device: torch.device | None, dtype: torch.dtype | None) -> None:
        self.own.to(device=device, dtype=dtype)
        self.weights.refresh()
        self._untraced.clear()

    def script(self, engine: Engine, methods: Sequence[str] | None) -> torch.jit.ScriptModule:
        from ..export.torchscript_export import bent_script

        self._check_methods(methods or ())
        return bent_script(self.module, *_steps(engine))[0]

    def export_nntilde(self, engine: Engine, path: str | Path, methods: Mapping[str, Mapping[str, Any]] | None) -> Path:
        """The bent copy of an nn~ file, its methods and metadata as the file registers them; `methods`, when
        given, must name methods the file registers (their metadata is the file's)."""
        from ..export.torchscript_export import bent_script, register_nntilde_attributes, save

        registered = list(self.module.get_methods()) if hasattr(self.module, "get_methods") else None
        if methods and registered is not None:
            unknown = [m for m in methods if m not in registered]
            if unknown:
                raise ExportError(
                    f"the nn~ file registers the methods {registered}, not {unknown}; its methods and "
                    "their metadata are kept as the file has them"
                )
        out, parameters = bent_script(self.module, *_steps(engine))
        register_nntilde_attributes(out, parameters)
        return save(out, path)

    def export(self, engine: Engine, path: str | Path, fn: str, args: tuple) -> Any:
        raise ExportError(
            "torch.export needs a Python module; a TorchScript file exports bent with script() "
            "(torch.jit.save) or export_nntilde()"
        )

    def _check_methods(self, methods: Sequence[str]) -> None:
        unknown = [m for m in methods if m not in self._methods]
        if unknown:
            raise ExportError(f"the TorchScript module has no methods {unknown}; its methods: {self._methods}")


def _steps(engine: Engine) -> tuple[dict, dict, dict, dict]:
    """The weight bends, activation bends (method -> value -> steps), version weights of one snapshot, and the
    non-tensor arguments each traced method was specialised to (exported specialised alike)."""
    with engine.lock:
        snapshot = engine.snapshot()
    baked = {fn: getattr(record, "specialised", record.baked) for fn, record in snapshot.records.items()}
    return dict(snapshot.plan), dict(snapshot.steps), dict(snapshot.sources), baked
