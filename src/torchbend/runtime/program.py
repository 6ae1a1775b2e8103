"""A traced graph compiled to plain Python, run against a view of the wrapped module.

    >>> record = bended.engine.record("decode")
    >>> program = Program(record, vae, bends={"decoder_net_convt0": ActivationBend([(tb.Scale(2), None)])})
    >>> runner = program.bind(ModuleView(vae))
    >>> out = runner.run((z,), {}, {})                               # the whole method, bent
    >>> early = Program(record, vae, outputs=["decoder_net_convt0"]).bind(ModuleView(vae))
    >>> sorted(early.call_named({"z": z}))                          # stops once known
    ['decoder_net_convt0']

A program is compiled once per set of activation bends; `bind(view)` points its module
calls and attribute reads at the submodules of a view (``self.mod3(x)``, ``self.mod3.weight``),
so bent weights held by the view's copies are seen and nothing is copied per call.
Activation bends are extra nodes that every consumer of the bent value reads instead of
the value itself. The source registered for tracebacks is released with the program.
"""

from __future__ import annotations

import itertools
import linecache
import weakref
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import torch
import torch.fx as fx

from ..bending.callback import BendingCallback
from ..errors import BendingError, TraceError
from ..naming import is_python_name, unsafe_fx_name
from ..tracing.call_check import shape_error
from ..tracing.record import TracedMethod
from ..tracing.surgery import bent_copy, cut_at, stop_after
from .view import ModuleView

_counter = itertools.count()


class ActivationBend:
    """The callbacks bending one activation (`node`), applied in order at every call.

    A run-time keyword of its callbacks (``interp_weights``) can be given for this
    activation alone as ``<node>_<keyword>``, or shared by every bent activation that takes
    it; a shared list or tuple of tensors gives one item to each of them, in graph order.
    """

    def __init__(self, steps: Sequence[tuple[BendingCallback, Any]], node: str = "") -> None:
        self.steps = [(cb, state, cb.runtime_inputs()) for cb, state in steps]
        self.node = node
        self.shared = tuple(dict.fromkeys(name for _, _, names in self.steps for name in names))
        self.inputs = self.shared + tuple(f"{node}_{k}" for k in self.shared if node)
        self.index: dict[str, int] = {}  # keyword -> this bend's item of a shared list

    def input_value(self, name: str, inputs: dict[str, Any]) -> Any:
        """This bend's value of the run-time keyword `name` among a call's `inputs`."""
        own = inputs.get(f"{self.node}_{name}") if self.node else None
        if own is not None:
            return own
        value = inputs.get(name)
        if (
            isinstance(value, (list, tuple))
            and name in self.index
            and value
            and all(v is None or isinstance(v, torch.Tensor) for v in value)
        ):
            i = self.index[name]
            return value[i] if i < len(value) else None
        return value

    def __call__(self, x: torch.Tensor, **inputs: Any) -> torch.Tensor:
        for cb, state, names in self.steps:
            if names:
                x = cb.forward(x, state, **{name: self.input_value(name, inputs) for name in names})
            else:
                x = cb.forward(x, state)
        return x


def number_inputs(bends: Mapping[str, ActivationBend]) -> None:
    """Give each bend its position among the bends sharing each run-time keyword (graph order)."""
    counts: dict[str, int] = {}
    for bend in bends.values():
        for name in bend.shared:
            bend.index[name] = counts.get(name, 0)
            counts[name] = bend.index[name] + 1


def check_graph_names(graph: fx.Graph, what: str, error: type[BendingError] = TraceError) -> None:
    """Refuse (with `error`, naming `what`) a graph holding a name that torch.fx's code generation would write
    as code rather than as a name: a value or input that is not an identifier, or a submodule, tensor or method
    path with an `unsafe_fx_name` (a crafted submodule name such as ``'x") or print("hi") or ("'``)."""
    for node in graph.nodes:
        names = [node.name, node.target.lstrip("*")] if node.op == "placeholder" else [node.name]
        bad = next((n for n in names if not is_python_name(n)), None)
        if bad is not None:
            raise error(
                f"{what}: the value or input name {bad!r} is not a Python identifier (not a keyword, "
                "unchanged by NFKC normalisation); it cannot be written into generated code"
            )
        path = node.target if node.op in ("call_module", "get_attr", "call_method") else None
        if node.op == "call_function" and node.target is getattr and len(node.args) == 2:
            path = node.args[1] if isinstance(node.args[1], str) else None
        bad = None if path is None else unsafe_fx_name(path)
        if bad is not None:
            raise error(
                f"{what}: the submodule, tensor or method name {bad!r} cannot be written into "
                "generated code as itself (a quote, a backslash, an unprintable character, a keyword or a "
                "name NFKC normalisation changes); rename it in the model"
            )


def compile_graph(graph: fx.Graph, label: str, owner: Any = None) -> Callable[..., Any]:
    """Python source for `graph` (fx codegen), executed into a function of ``(frame, *inputs)``; a graph with
    a name that would run as code is refused (`check_graph_names`).

    The source is registered for tracebacks until `owner` (if given) is garbage-collected.
    """
    check_graph_names(graph, f"method {label}")
    code = graph.python_code(root_module="self")
    filename = f"<torchbend {label} #{next(_counter)}>"
    linecache.cache[filename] = (len(code.src), None, code.src.splitlines(True), filename)
    if owner is not None:
        weakref.finalize(owner, linecache.cache.pop, filename, None)
    namespace = dict(code.globals)
    exec(compile(code.src, filename, "exec"), namespace)
    return namespace["forward"]


def _bindings(graph: fx.Graph, module: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """Point module calls and attribute reads at frame attributes (``self.m.decoder.net.convt0(x)`` ->
    ``self.mod3(x)``); returns each frame attribute's submodule."""
    names: dict[int, str] = {}
    bound: dict[str, torch.nn.Module] = {}

    def bind(path: str) -> str:
        sub = module.get_submodule(path)
        if id(sub) not in names:
            names[id(sub)] = f"mod{len(names)}"
            bound[names[id(sub)]] = sub
        return names[id(sub)]

    for node in graph.nodes:
        if node.op not in ("call_module", "get_attr") or not node.target.startswith("m."):
            continue
        path = node.target[2:]
        if node.op == "call_module":
            node.target = bind(path)
        else:
            owner, _, attr = path.rpartition(".")
            node.target = f"{bind(owner)}.{attr}"
    return bound


class Program:
    """A runnable (part of a) traced method, compiled once; `bind(view)` gives what a call runs.

    `bends` maps activation names to their bends; `outputs` (activation names) makes the
    program stop once those values are known and return them as a dict, taken before
    their own bends unless `after_bends`; `cut` names activations whose values are given
    by the caller, skipping the work that only fed them (their own bends still apply).
    """

    optional_inputs: tuple[str, ...] = ()  # inputs with a default (none: non-tensor arguments are baked)

    def __init__(
        self,
        record: TracedMethod,
        module: torch.nn.Module,
        bends: Mapping[str, ActivationBend] | None = None,
        outputs: Sequence[str] | None = None,
        after_bends: bool = False,
        cut: Sequence[str] = (),
    ) -> None:
        bends = dict(bends or {})
        number_inputs(bends)
        runtime = tuple(dict.fromkeys(k for bend in bends.values() for k in bend.inputs))
        self.graph, _, bent = bent_copy(record.graph, record.constants, bends, runtime)
        if cut:
            cut_at(self.graph, cut)
        if outputs is not None:
            stop_after(self.graph, {name: bent.get(name, name) if after_bends else name for name in outputs})
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        self.input_names = [n.target for n in placeholders]
        self.runtime_inputs = tuple(name for name in runtime if name in self.input_names)
        self.accepted = set(self.input_names)  # codegen names each argument after its placeholder's target
        self.constants = SimpleNamespace(**record.constants)
        self.bends = SimpleNamespace(**bends)
        self.modules = _bindings(self.graph, module)
        self.fn = compile_graph(self.graph, record.name, owner=self)
        self.record = record

    @property
    def code(self) -> str:
        return self.graph.python_code(root_module="self").src

    def bind(self, view: ModuleView, bends: SimpleNamespace | None = None) -> BoundProgram:
        """This program running against `view`'s submodules (with `bends` in place of its activation bends, by
        node name, when given)."""
        frame = SimpleNamespace(c=self.constants, b=self.bends if bends is None else bends)
        for name, module in self.modules.items():
            setattr(frame, name, view.get(module))
        return BoundProgram(self, frame)


class BoundProgram:
    """A program and the frame it runs with."""

    def __init__(self, program: Program, frame: SimpleNamespace) -> None:
        self.program = program
        self.frame = frame
        self.fn = program.fn
        self.flatten = program.record.plan.flatten
        self.method = program.record.name
        self.runtime_inputs = program.runtime_inputs

    def run(self, args: tuple, kwargs: dict, runtime: Mapping[str, Any]) -> Any:
        """Run as the method is called: its arguments, and run-time inputs of callbacks by name."""
        inputs = self.flatten(args, kwargs, self.method)
        try:
            if runtime:
                accepted = self.program.accepted
                return self.fn(self.frame, *inputs, **{k: v for k, v in runtime.items() if k in accepted})
            return self.fn(self.frame, *inputs)
        except (RuntimeError, IndexError) as error:  # torch's shape errors: say so if an input is not as traced
            record = self.program.record
            traced = {
                n.target: record.activations[n.name].shape
                for n in record.graph.nodes
                if n.op == "placeholder" and n.name in record.activations
            }
            clear = shape_error(self.method, list(record.plan.placeholders), inputs, traced, error)
            if clear is None:
                raise
            raise clear from error

    def call_named(self, values: Mapping[str, Any]) -> Any:
        """Run with every input given by name (missing run-time inputs default to None)."""
        accepted = self.program.accepted
        return self.fn(self.frame, **{k: v for k, v in values.items() if k in accepted})
