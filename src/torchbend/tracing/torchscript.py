"""The graphs of a TorchScript module (a `torch.jit.load`-ed file), recorded and run with bends.

    >>> loaded = torch.jit.load("rave.ts")
    >>> own = private_copy(loaded)                       # runs and caches live here, never in `loaded`
    >>> record = ScriptMethod(own, "decode")
    >>> record.trace((z,), {})                           # shapes from one example call
    >>> record.activation_names()[:2]                    # ['z.1', 'decoder.net.0:input.1', ...]
    >>> program = record.program({"decoder.net.0:input.1": bend}, weights=["decoder.net.0.weight"])
    >>> program.run((z,), {}, {}, weights={"decoder.net.0.weight": w})

Each method's graph is copied and inlined (`torch._C._jit_pass_inline`); an activation is a
tensor value of the top-level block, named by the submodule that computes it and its debug
name. A program is a rewritten copy of that graph compiled into a script function taking the
module as ``self``: a bend is a Python call inserted right after its value (every consumer
re-pointed), a bent weight is a graph input replacing the ``prim::GetAttr`` that read it.
"""


import io
import itertools
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ..errors import BendingError, UnknownNameError
from ..naming import closest_names
from .record import ActivationInfo

_SKIPPED = {"prim::Constant", "prim::GetAttr", "prim::ListConstruct", "prim::TupleConstruct"}
_runtime = threading.local()  # run-time inputs of the call in progress on this thread


def private_copy(module: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """An independent copy (own types, graphs, weights and buffers) of a scripted module."""
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


def module_path(node: torch._C.Node) -> str:
    """``decoder(Decoder).net(Sequential).3(Conv1d).SELF(Conv1d)`` -> ``decoder.net.3``."""
    atoms = [atom.split("(")[0] for atom in re.split(r"\.(?![^(]*\))", node.getModuleHierarchy()) if atom]
    return ".".join(a for a in atoms if a not in ("SELF", "UNKNOWN_INSTANCE", "TOP"))


def _is_tensor(value: torch._C.Value) -> bool:
    return isinstance(value.type(), torch._C.TensorType)


def _in_place(kind: str) -> bool:
    op = kind.split("::")[-1]
    return op.endswith("_") and not op.endswith("__")


def inlined_graph(module: torch.jit.ScriptModule, fn: str) -> torch._C.Graph:
    """A copy of method `fn`'s graph with every method call inlined."""
    graph = getattr(module, fn).graph.copy()
    torch._C._jit_pass_inline(graph)
    return graph


def _all_nodes(block: Any) -> Any:
    for node in block.nodes():
        yield node
        for inner in node.blocks():
            yield from _all_nodes(inner)


class _Namer:
    """Readable unique names: ``<module path>:<debug name>``, the op's name for unnamed values."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}

    def __call__(self, value: torch._C.Value) -> str:
        node = value.node()
        base = value.debugName()
        if base.isdigit():
            base = node.kind().split("::")[-1]
        path = module_path(node) if node.kind() != "prim::Param" else ""
        name = f"{path}:{base}" if path else base
        count = self.used.get(name, 0)
        self.used[name] = count + 1
        return name if count == 0 else f"{name}_{count}"


def named_values(graph: torch._C.Graph) -> tuple[dict[str, torch._C.Value], dict[str, torch._C.Node]]:
    """Tensor values of the top-level block by name (graph order), and the block node holding each nested one.

    Names depend only on the graph's structure, so two copies of a graph name their values alike.
    """
    name = _Namer()
    top: dict[str, torch._C.Value] = {}
    nested: dict[str, torch._C.Node] = {}
    for value in list(graph.inputs())[1:]:
        if _is_tensor(value):
            top[name(value)] = value
    for node in graph.nodes():
        if node.kind() not in _SKIPPED:
            for value in node.outputs():
                if _is_tensor(value):
                    top[name(value)] = value
        for block in node.blocks():
            for inner in _all_nodes(block):
                for value in inner.outputs():
                    if _is_tensor(value) and inner.kind() not in _SKIPPED:
                        nested[name(value)] = node
    return top, nested


def attribute_paths(graph: torch._C.Graph) -> dict[str, list[torch._C.Value]]:
    """Every ``prim::GetAttr`` read, by its dotted path from ``self`` (``decoder.net.0.weight``)."""
    paths: dict[torch._C.Value, str] = {next(graph.inputs()): ""}
    found: dict[str, list[torch._C.Value]] = {}
    for node in _all_nodes(graph):
        if node.kind() == "prim::GetAttr" and node.input() in paths:
            base = paths[node.input()]
            path = f"{base}.{node.s('name')}" if base else node.s("name")
            paths[node.output()] = path
            found.setdefault(path, []).append(node.output())
    return found


_calls: "weakref.WeakValueDictionary[int, Callable]" = weakref.WeakValueDictionary()
_keys = itertools.count()
_template: list[Any] = []  # the scripted template, its PythonOp node, the node's tensor input


@torch.jit.ignore
def _call_python(x: torch.Tensor, key: int) -> torch.Tensor:
    return _calls[key](x)


def _call_template(x: torch.Tensor, key: int) -> torch.Tensor:
    return _call_python(x, key)


def _python_call() -> torch._C.Node:
    """The ``prim::PythonOp`` node calling ``_call_python(x, key)``, scripted once, cloned into graphs."""
    if not _template:
        scripted = torch.jit.script(_call_template)
        node = next(n for n in scripted.graph.nodes() if n.kind() == "prim::PythonOp")
        _template.extend([scripted, node, next(scripted.graph.inputs())])
    return _template[1]


def _apply(bend: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    def call(x: torch.Tensor) -> torch.Tensor:
        given = getattr(_runtime, "values", None)
        if given and bend.inputs:
            return bend(x, **{k: given[k] for k in bend.inputs if k in given})
        return bend(x)

    return call


def insert_after(graph: torch._C.Graph, value: torch._C.Value, fn: Callable) -> torch._C.Value:
    """Call `fn` on `value` right after it is computed; every consumer reads the result instead.

    The graph holds `fn` only by a key: keep `fn` alive for as long as the graph runs.
    """
    key = next(_keys)
    _calls[key] = fn
    constant = graph.insertConstant(key)
    template = _python_call()
    node = graph.createClone(template, lambda v: value if v.unique() == _template[2].unique() else constant)
    anchor = value.node()
    if anchor.kind() == "prim::Param":
        node.insertBefore(next(iter(graph.nodes())))
    else:
        node.insertAfter(anchor)
    constant.node().moveBefore(node)
    value.replaceAllUsesWith(node.output())
    node.replaceInputWith(node.output(), value)
    return node.output()


def set_outputs(graph: torch._C.Graph, values: Sequence[torch._C.Value]) -> None:
    """Make the graph return `values` as a tuple, dropping the work nothing needs any more."""
    while len(list(graph.outputs())):
        graph.eraseOutput(0)
    node = graph.create("prim::TupleConstruct", list(values), 1)
    node.output().setType(torch._C.TupleType([v.type() for v in values]))
    graph.appendNode(node)
    graph.registerOutput(node.output())


class ScriptMethod:
    """One method of a scripted module: its inlined graph, its activations and how to run it bent."""

    kind = "torchscript"

    def __init__(self, module: torch.jit.ScriptModule, name: str) -> None:
        if not hasattr(module, name) or not hasattr(getattr(module, name), "graph"):
            methods = sorted(m for m in dir(module) if hasattr(getattr(module, m, None), "graph"))
            raise BendingError(f"the TorchScript module has no method {name!r}; its methods: {methods}")
        self.module = module
        self.name = name
        self.schema = getattr(module, name).schema
        self.graph = inlined_graph(module, name)
        values, self.nested = named_values(self.graph)
        self.activations = {n: ActivationInfo(n, v.node().kind(), module_path(v.node()), None, None, "Tensor")
                            for n, v in values.items()}
        self.input_names = [a.name for a in self.schema.arguments[1:]]
        self.weights = attribute_paths(self.graph)
        self.mutated = {n: use.user.kind() for n, v in values.items() for use in v.uses()
                        if _in_place(use.user.kind()) and use.offset == 0}  # value -> the in-place op writing it

    def activation_names(self) -> list[str]:
        return list(self.activations)

    def check(self, name: str, what: str) -> None:
        """A clear error for a name that is not a bendable value of this method."""
        if name in self.activations:
            return
        if name in self.nested:
            node = self.nested[name]
            raise BendingError(f"cannot {what} {name!r} in method {self.name!r}: it is computed inside a "
                               f"{node.kind()} block (control flow of {module_path(node) or 'the module'}); "
                               "choose a value outside it")
        raise UnknownNameError(f"no activation {name!r} in method {self.name!r}; closest: "
                               f"{closest_names(name, list(self.activations))}")

    def bind(self, args: tuple, kwargs: Mapping[str, Any]) -> list[Any]:
        """The method's arguments, all positional, defaults filled in."""
        params = self.schema.arguments[1:]
        if len(args) > len(params):
            raise TypeError(f"{self.name}() takes {len(params)} arguments, got {len(args)}")
        values = list(args)
        for p in params[len(args):]:
            if p.name in kwargs:
                values.append(kwargs[p.name])
            elif p.has_default_value():
                values.append(p.default_value)
            else:
                raise TypeError(f"{self.name}() is missing the argument {p.name!r}")
        unknown = set(kwargs) - {p.name for p in params}
        if unknown:
            raise TypeError(f"{self.name}() got unknown arguments {sorted(unknown)}; it takes {self.input_names}")
        return values

    def trace(self, args: tuple, kwargs: Mapping[str, Any]) -> None:
        """Record every activation's shape, dtype and device from one call (on a copy of the module)."""
        seen: dict[str, torch.Tensor] = {}
        graph = self.graph.copy()
        values, _ = named_values(graph)
        recorders = []
        for name, value in values.items():
            def record(x: torch.Tensor, name: str = name) -> torch.Tensor:
                seen[name] = x
                return x
            recorders.append(record)
            insert_after(graph, value, record)
        function = torch._C._create_function_from_graph(f"trace_{self.name}", graph)
        with torch.no_grad():
            function(private_copy(self.module), *self.bind(args, kwargs))
        for name, info in self.activations.items():
            x = seen.get(name)
            if isinstance(x, torch.Tensor):
                self.activations[name] = ActivationInfo(name, info.op, info.target, tuple(x.shape), x.dtype,
                                                        type(x).__name__, x.device)

    def program(self, bends: Mapping[str, Any] | None = None, outputs: Sequence[str] | None = None,
                after_bends: bool = False, cut: Sequence[str] = (), weights: Sequence[str] = ()) -> "ScriptProgram":
        return ScriptProgram(self, bends, outputs, after_bends, cut, weights)


class ScriptProgram:
    """A rewritten copy of a method's graph, compiled: bends, bent weights, early outputs, cut values.

    `bends` maps activation names to callables ``bend(x, **runtime)`` with an ``inputs`` tuple;
    `weights` names the weights given at each call (``run(..., weights={name: tensor})``);
    `outputs` makes it return those values as a dict (before their own bends unless
    `after_bends`); `cut` names values given by the caller in `call_named`.
    """

    def __init__(self, method: ScriptMethod, bends: Mapping[str, Any] | None = None,
                 outputs: Sequence[str] | None = None, after_bends: bool = False, cut: Sequence[str] = (),
                 weights: Sequence[str] = ()) -> None:
        bends = dict(bends or {})
        for name in [*bends, *(outputs or ()), *cut]:
            method.check(name, "bend" if name in bends else "read or replace")
        for name in outputs or ():
            if name in method.mutated:
                raise BendingError(f"cannot read {name!r} of method {method.name!r}: the node "
                                   f"{method.mutated[name]} later writes it in place; read a value after it")
        self.method = method
        self.bends = bends
        self.runtime_inputs = tuple(dict.fromkeys(k for b in bends.values() for k in getattr(b, "inputs", ())))
        graph = method.graph.copy()
        values, _ = named_values(graph)
        reads = attribute_paths(graph)
        for name in cut:
            given = graph.addInput(re.sub(r"\W", "_", name))
            given.setType(values[name].type())
            values[name].replaceAllUsesWith(given)
            values[name] = given
        self.weight_names = list(weights)
        for weight in self.weight_names:
            if weight not in reads:
                raise UnknownNameError(f"method {method.name!r} does not read a weight {weight!r}; closest: "
                                       f"{closest_names(weight, list(reads))}")
            given = graph.addInput(weight.replace(".", "_"))
            given.setType(reads[weight][0].type())
            for read in reads[weight]:
                read.replaceAllUsesWith(given)
        before = {name: values[name] for name in outputs or ()}
        self._calls = [_apply(bend) for bend in bends.values()]  # the graph holds them by key only
        for name, call in zip(bends, self._calls):
            values[name] = insert_after(graph, values[name], call)
        if outputs is not None:
            self.outputs = list(outputs)
            set_outputs(graph, [values[n] if after_bends else before[n] for n in self.outputs])
        else:
            self.outputs = None
        torch._C._jit_pass_dce(graph)
        inputs = list(graph.inputs())
        self.arg_names = list(method.input_names)
        if cut:  # a cut program takes only the arguments it still reads
            for i in reversed(range(len(self.arg_names))):
                if not inputs[1 + i].uses():
                    graph.eraseInput(1 + i)
                    del self.arg_names[i]
        self.cut = list(cut)
        self.graph = graph
        self.function = torch._C._create_function_from_graph(f"bent_{method.name}", graph)
        self.weights: dict[str, torch.Tensor] = {}

    def _weights(self, weights: Mapping[str, torch.Tensor] | None) -> list[torch.Tensor]:
        weights = self.weights if weights is None else weights
        try:
            return [weights[name] for name in self.weight_names]
        except KeyError as error:
            raise BendingError(f"the bent weight {error.args[0]!r} was not given to the program") from None

    def _call(self, inputs: list[Any], runtime: Mapping[str, Any], weights: Mapping | None) -> Any:
        previous = getattr(_runtime, "values", None)
        _runtime.values = runtime
        try:
            out = self.function(self.method.module, *inputs, *self._weights(weights))
        finally:
            _runtime.values = previous
        if self.outputs is not None:
            return dict(zip(self.outputs, out, strict=True))
        return out

    def run(self, args: tuple, kwargs: Mapping[str, Any], runtime: Mapping[str, Any],
            weights: Mapping[str, torch.Tensor] | None = None) -> Any:
        """Run as the method is called; `weights` (default: ``self.weights``) are the bent weights."""
        if self.cut:
            raise BendingError("a program with cut values runs through call_named")
        return self._call(self.method.bind(args, dict(kwargs)), runtime, weights)

    def call_named(self, values: Mapping[str, Any], weights: Mapping[str, torch.Tensor] | None = None) -> Any:
        """Run with the method's arguments, cut values and run-time inputs given by name."""
        missing = [n for n in self.arg_names + self.cut if n not in values]
        if missing:
            raise BendingError(f"method {self.method.name!r} needs {missing} here "
                               f"(given: {sorted(values)})")
        args = [values[n] for n in self.arg_names]
        runtime = {k: values[k] for k in self.runtime_inputs if k in values}
        return self._call(args + [values[n] for n in self.cut], runtime, weights)  # graph order: args, cut, weights
