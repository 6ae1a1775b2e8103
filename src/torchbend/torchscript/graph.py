"""The graphs of a TorchScript module (a `torch.jit.load`-ed file), recorded and run with bends.

    >>> scripted = torch.jit.script(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU()))
    >>> own = private_copy(scripted)                     # runs and caches live here, never in `scripted`
    >>> record = ScriptMethod(own, "forward")
    >>> record.trace((torch.randn(2, 3),), {})           # shapes from one example call
    >>> record.activation_names()
    ['input.1', '0:input0.1', '1:result.3']
    >>> program = ScriptProgram(record, {"1:result.3": ActivationBend([(tb.Scale(0.0), None)])})
    >>> runner = program.bind(ScriptView({"0.bias": torch.ones(4)}))    # bent weights, by name
    >>> runner.run((torch.randn(2, 3),), {}, {}).abs().sum().item()
    0.0

Each method's graph is copied and inlined (`torch._C._jit_pass_inline`), and a traced one is
specialised to the call's non-tensor arguments and the attributes no method assigns (`specialise`:
their branches folded, guarded at each call by `ScriptMethod.check_baked`); an activation is a
tensor value of the top-level block, named by the submodule that computes it and its debug
name. A program is a rewritten copy of that graph compiled into a script function taking the
module as ``self``: a bent weight is a graph input replacing the ``prim::GetAttr`` that read it,
and a bend is inserted right after its value (every consumer re-pointed): the TorchScript graph
of its callbacks' ``script`` code when a `compiler` gives one (live parameters are graph inputs,
so a change needs no recompiling), else a call back into Python.
"""

import io
import itertools
import re
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from ..errors import BendingError, SpecializationError, UnknownNameError
from ..naming import closest_names
from ..runtime.program import ActivationBend, number_inputs
from ..tracing.record import ActivationInfo, MethodRecord, same_value
from ..tracing.tracer import Decision
from .specialise import CONSTANT_TYPES, GIVEN, all_nodes, attribute_paths, is_tensor, specialise

_SKIPPED = {"prim::Constant", "prim::GetAttr", "prim::ListConstruct", "prim::TupleConstruct", "prim::Uninitialized"}
_runtime = threading.local()  # run-time inputs (and replaced bends) of the call in progress on this thread


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


def _in_place(kind: str) -> bool:
    op = kind.split("::")[-1]
    return op.endswith("_") and not op.endswith("__")


def inlined_graph(module: torch.jit.ScriptModule, fn: str) -> torch._C.Graph:
    """A copy of method `fn`'s graph with every method call inlined."""
    graph = getattr(module, fn).graph.copy()
    torch._C._jit_pass_inline(graph)
    return graph


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


def _raises(block: Any) -> bool:
    """Whether a block ends by raising (its outputs are never read)."""
    return any(node.kind() == "prim::RaiseException" for node in block.nodes())


def maybe_unset(graph: torch._C.Graph) -> set[int]:
    """The values (by ``unique()``) that may hold TorchScript's uninitialized placeholder when read: outputs
    of an if or a loop that some path leaves unset (a ``return`` inside a loop); branches that raise excepted."""
    unset = {v.unique() for n in all_nodes(graph) if n.kind() == "prim::Uninitialized" for v in n.outputs()}
    changed = True
    while changed:
        changed = False
        for node in all_nodes(graph):
            if node.kind() == "prim::If":
                sources = [[v] for v in node.outputs()]
                for block in node.blocks():
                    if not _raises(block):
                        for i, v in enumerate(block.returnNode().inputs()):
                            sources[i].append(v)
            elif node.kind() == "prim::Loop":
                body = next(iter(node.blocks()))
                carried = list(node.inputs())[2:]
                params = list(body.inputs())[1:]
                returned = list(body.returnNode().inputs())[1:]
                sources = [[out, init, ret] for out, init, ret in zip(node.outputs(), carried, returned)]
                sources += [[param, init, ret] for param, init, ret in zip(params, carried, returned)]
            else:
                continue
            for target, *inputs in sources:
                if target.unique() not in unset and any(v.unique() in unset for v in inputs):
                    unset.add(target.unique())
                    changed = True
    return unset


def named_values(
    graph: torch._C.Graph, unset_names: set[str] | None = None
) -> tuple[dict[str, torch._C.Value], dict[str, torch._C.Node]]:
    """Tensor values of the top-level block by name (graph order), and the block node holding each nested one
    or leaving it unset on some path (those names are added to `unset_names` when given).

    Names depend only on the graph's structure, so two copies of a graph name their values alike.
    """
    name = _Namer()
    unset = maybe_unset(graph)
    top: dict[str, torch._C.Value] = {}
    nested: dict[str, torch._C.Node] = {}
    for value in list(graph.inputs())[1:]:
        if is_tensor(value):
            top[name(value)] = value
    for node in graph.nodes():
        if node.kind() not in _SKIPPED:
            for value in node.outputs():
                if is_tensor(value):
                    if value.unique() in unset:
                        nested[name(value)] = node
                        if unset_names is not None:
                            unset_names.add(next(reversed(nested)))
                    else:
                        top[name(value)] = value
        for block in node.blocks():
            for inner in all_nodes(block):
                for value in inner.outputs():
                    if is_tensor(value) and inner.kind() not in _SKIPPED:
                        nested[name(value)] = node
    return top, nested


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


def _step(bends: Mapping[str, Any], name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The Python call of the bend of `name`: the call's own bends replace `bends` while it runs (see `bind`)."""
    default = bends[name]

    def call(x: torch.Tensor) -> torch.Tensor:
        replaced = getattr(_runtime, "bends", None)
        bend = default if replaced is None else getattr(replaced, name, default)
        given = getattr(_runtime, "values", None)
        if given and default.inputs:
            return bend(x, **{k: given[k] for k in default.inputs if k in given})
        return bend(x)

    return call


def insert_after(graph: torch._C.Graph, value: torch._C.Value, fn: Callable) -> torch._C.Value:
    """Call `fn` on `value` right after it is computed; every consumer reads the result instead.

    The graph holds `fn` only by a key: keep `fn` alive for as long as the graph runs.
    """
    key = next(_keys)
    _calls[key] = fn
    constant = graph.insertConstant(key)  # type: ignore[attr-defined]  # not in torch._C's stubs
    template = _python_call()
    node = graph.createClone(  # type: ignore[attr-defined]  # not in torch._C's stubs
        template, lambda v: value if v.unique() == _template[2].unique() else constant
    )
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


def splice(
    graph: torch._C.Graph, body: torch._C.Graph, value: torch._C.Value, extra: Sequence[torch._C.Value] = ()
) -> torch._C.Value:
    """Insert a copy of `body`, a graph ``(x, *extra) -> y``, right after `value` (as x); every consumer of
    `value` reads y instead."""
    uses = [(use.user, use.offset) for use in value.uses()]
    env = {v.unique(): given for v, given in zip(body.inputs(), [value, *extra], strict=True)}
    cursor = None if value.node().kind() == "prim::Param" else value.node()
    first = next(iter(graph.nodes()), None)
    for node in body.nodes():
        copy = graph.createClone(node, lambda v: env[v.unique()])  # type: ignore[attr-defined]  # not in the stubs
        if cursor is not None:
            copy.insertAfter(cursor)
        elif first is not None:
            copy.insertBefore(first)
        else:
            graph.appendNode(copy)
        cursor = copy
        for old, new in zip(node.outputs(), copy.outputs()):
            env[old.unique()] = new
    out = env[next(body.outputs()).unique()]
    for user, offset in uses:
        user.replaceInput(offset, out)
    return out


def _used(node: torch._C.Node) -> list[torch._C.Value]:
    """The values `node` reads, also inside its blocks."""
    used = list(node.inputs())
    for block in node.blocks():
        for inner in all_nodes(block):
            used += list(inner.inputs())
        used += list(block.returnNode().inputs())
    return used


def _writes_state(node: torch._C.Node) -> bool:
    return node.kind() == "prim::SetAttr" or any(
        n.kind() == "prim::SetAttr" for b in node.blocks() for n in all_nodes(b)
    )


def drop_skipped_writes(graph: torch._C.Graph, arguments: Sequence[torch._C.Value]) -> None:
    """Remove the state writes (``self.cache = ...``, also inside an ``if``) of the top-level block that are
    computed from the method's `arguments` and from nothing the outputs still need: the writes of the layers a
    cut program skips."""

    def reach(values: Sequence[torch._C.Value]) -> set[int]:
        seen: set[int] = set()
        stack = list(values)
        while stack:
            value = stack.pop()
            if value.unique() in seen:
                continue
            seen.add(value.unique())
            stack += _used(value.node())
        return seen

    plain = {"prim::Constant", "prim::GetAttr", "prim::Param"}  # shared by everything: not a dependency
    needed = {u for u in reach(list(graph.outputs()))}
    needed = {
        v.unique() for n in all_nodes(graph) for v in n.outputs() if v.unique() in needed and n.kind() not in plain
    }
    given = {v.unique() for v in arguments}
    for node in reversed(list(graph.nodes())):
        if _writes_state(node):
            deps = reach(_used(node))
            if deps & given and not deps & needed:
                node.destroy()


class ScriptMethod(MethodRecord):
    """One method of a scripted module: its inlined graph, its activations and how to run it bent.

    An activation's `scope` is the submodule computing it, so ``"<value>@<module path>"`` patterns work.
    """

    kind = "torchscript"
    grouped_bends = True

    def __init__(self, module: torch.jit.ScriptModule, name: str) -> None:
        if not hasattr(module, name) or not hasattr(getattr(module, name), "graph"):
            methods = sorted(m for m in dir(module) if hasattr(getattr(module, m, None), "graph"))
            raise BendingError(f"the TorchScript module has no method {name!r}; its methods: {methods}")
        self.module = module
        self.schema = getattr(module, name).schema
        super().__init__(name, {})
        self._input_names = [a.name for a in self.schema.arguments[1:]]
        self.defaults = {a.name: a.default_value for a in self.schema.arguments[1:] if a.has_default_value()}
        self._baked: dict[str, Any] = {}  # non-tensor arguments the graph is specialised to
        self.given: list[str] = []  # optional arguments traced with a value (their `is None` tests folded)
        self.specialised: dict[str, Any] = {}  # both: what `specialise` took
        self.folded: dict[str, Any] = {}  # read-only attributes folded into it
        self._use(inlined_graph(module, name))

    def _use(self, graph: torch._C.Graph) -> None:
        self.graph = graph
        self.unset: set[str] = set()
        values, self.nested = named_values(graph, self.unset)
        self.activations = {
            n: ActivationInfo(
                n,
                v.node().kind(),
                module_path(v.node()),
                None,
                None,
                "Tensor",
                scope=module_path(v.node()) if v.node().kind() != "prim::Param" else "",
            )
            for n, v in values.items()
        }
        self.weights = attribute_paths(graph)
        self.mutated = {
            n: use.user.kind()
            for n, v in values.items()
            for use in v.uses()
            if _in_place(use.user.kind()) and use.offset == 0
        }  # value -> the in-place op writing it
        self._resolved.clear()

    @property
    def baked(self) -> dict[str, Any]:
        return dict(self._baked)

    def _specialise(self, values: Sequence[Any]) -> None:
        """Fold the non-tensor arguments of this call (and the read-only attributes) into the graph."""
        inputs = list(self.graph.inputs())[1:]
        arguments: dict[int, Any] = {}
        for i, (value, v) in enumerate(zip(inputs, values), 1):
            if type(v) in CONSTANT_TYPES and not is_tensor(value):
                arguments[i] = v
            elif isinstance(value.type(), torch._C.OptionalType):
                arguments[i] = GIVEN
        graph = inlined_graph(self.module, self.name)
        self.folded = specialise(graph, self.module, arguments)
        self.specialised = {self._input_names[i - 1]: v for i, v in arguments.items()}
        self._baked = {name: v for name, v in self.specialised.items() if v is not GIVEN}
        self.given = [name for name, v in self.specialised.items() if v is GIVEN]
        self.decisions = [Decision("argument", name, v, self.name) for name, v in self.specialised.items()]
        self._use(graph)

    def none_given(self, name: str) -> SpecializationError:
        return SpecializationError(
            f"{self.name} was traced with a value for {name}, this call gives None: the traced "
            "graph keeps only the branches a value takes. Trace it again with None, or with "
            "retrace=True"
        )

    def check_baked(self, values: Sequence[Any]) -> None:
        """Raise `SpecializationError` when a call's non-tensor argument differs from the one traced (or gives
        None for an optional argument traced with a value)."""
        for name in self.given:
            if values[self._input_names.index(name)] is None:
                raise self.none_given(name)
        for i, name in enumerate(self._input_names):
            if name in self._baked and not same_value(values[i], self._baked[name]):
                given = "a tensor" if isinstance(values[i], torch.Tensor) else repr(values[i])
                raise SpecializationError(
                    f"{self.name} was traced with {name}={self._baked[name]!r}, this call gives {given}: "
                    "the traced graph keeps only the branches that value takes. Trace it again with this value "
                    "(bended.trace(...)), or trace it with retrace=True to re-trace on such calls"
                )

    @property
    def input_names(self) -> list[str]:
        return self._input_names

    def check(self, name: str, what: str) -> None:
        """A clear error for a name that is not a bendable value of this method."""
        if name in self.activations:
            return
        if name in self.unset:
            raise BendingError(
                f"cannot {what} {name!r} in method {self.name!r}: a path through its "
                f"{self.nested[name].kind()} leaves it unset (a return or break inside a loop); "
                "choose a value outside it"
            )
        if name in self.nested:
            node = self.nested[name]
            raise BendingError(
                f"cannot {what} {name!r} in method {self.name!r}: it is computed inside a "
                f"{node.kind()} block (control flow of {module_path(node) or 'the module'}); "
                "choose a value outside it"
            )
        raise UnknownNameError(
            f"no activation {name!r} in method {self.name!r}; closest: {closest_names(name, list(self.activations))}"
        )

    def resolve(self, patterns: Sequence[str]) -> list[str]:
        for pattern in patterns:
            if pattern in self.nested:
                self.check(pattern, "bend or read")
        return super().resolve(patterns)

    def bind(self, args: tuple, kwargs: Mapping[str, Any]) -> list[Any]:
        """The method's arguments, all positional, defaults filled in."""
        if not kwargs and len(args) == len(self.input_names):
            if self.specialised:
                self.check_baked(args)
            return list(args)
        params = self.schema.arguments[1:]
        if len(args) > len(params):
            raise TypeError(f"{self.name}() takes {len(params)} arguments, got {len(args)}")
        values = list(args)
        for p in params[len(args) :]:
            if p.name in kwargs:
                values.append(kwargs[p.name])
            elif p.has_default_value():
                values.append(p.default_value)
            else:
                raise TypeError(f"{self.name}() is missing the argument {p.name!r}")
        unknown = set(kwargs) - {p.name for p in params[len(args) :]}
        if unknown:
            raise TypeError(
                f"{self.name}() got unknown or repeated arguments {sorted(unknown)}; it takes {self.input_names}"
            )
        if self.specialised:
            self.check_baked(values)
        return values

    def named_arguments(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
        return dict(zip(self.input_names, self.bind(args, kwargs)))

    def trace(self, args: tuple, kwargs: Mapping[str, Any]) -> None:
        """Specialise the graph to this call's non-tensor arguments (see `specialise`), and record every
        activation's shape, dtype and device from the call (on a copy of the module)."""
        self._baked, self.given, self.specialised = {}, [], {}
        self._specialise(self.bind(args, kwargs))
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
                self.activations[name] = ActivationInfo(
                    name, info.op, info.target, tuple(x.shape), x.dtype, type(x).__name__, x.device, info.scope
                )
        self._resolved.clear()

    def describe(self) -> list[list[str]]:
        rows = [
            [
                "mode",
                self.kind,
                "the method's TorchScript graph, inlined and specialised to its non-tensor "
                "arguments; values inside the if/loop blocks left cannot be bent",
            ]
        ]
        if self.folded:
            rows.append(
                [
                    "folded",
                    f"{len(self.folded)} read-only attributes",
                    ", ".join(f"{k}={v!r}" for k, v in list(self.folded.items())[:8])
                    + (", ..." if len(self.folded) > 8 else ""),
                ]
            )
        return rows + super().describe()[1:]

    def program(self, module: Any = None, bends: Mapping[str, Any] | None = None, **options: Any) -> "ScriptProgram":
        return ScriptProgram(self, bends, **options)


class ScriptView:
    """What a call of a TorchScript program runs with: tensors (bent weights, weight versions) by path."""

    def __init__(self, tensors: Mapping[str, torch.Tensor] | None = None) -> None:
        self.tensors = dict(tensors or {})


class CompiledBend:
    """A bend as TorchScript: `graph` maps ``(x, *parameters, *tensors)`` to the bent x, where `parameters`
    (live, read at each call) have a ``.value`` and a ``.type`` (float, int or bool)."""

    def __init__(self, graph: torch._C.Graph, parameters: Sequence[Any], tensors: Sequence[torch.Tensor]) -> None:
        self.graph, self.parameters, self.tensors = graph, list(parameters), list(tensors)


Compiler = Callable[[ActivationBend, str], "CompiledBend | None"]
_TYPES: dict[type, Any] = {float: torch._C.FloatType, int: torch._C.IntType, bool: torch._C.BoolType}


class _Variant:
    """A program compiled for one set of weight inputs, with its bends as TorchScript or as Python calls."""

    def __init__(
        self,
        function: Any,
        parameters: list[Any],
        tensors: list[torch.Tensor],
        steps: list[Callable],
    ) -> None:
        self.function, self.parameters, self.tensors, self.steps = function, parameters, tensors, steps


class ScriptProgram:
    """A rewritten copy of a method's graph: bends, early outputs, cut values; `bind(view)` gives what runs.

    `bends` maps activation names to `ActivationBend`s; `outputs` makes it return those values as a
    dict (before their own bends unless `after_bends`); `cut` names values given by the caller in
    `call_named`. `compiler` turns a bend into TorchScript (`CompiledBend`, or None to call it in
    Python). The graph is compiled once for each set of weights a view gives (`bind`).
    """

    def __init__(
        self,
        method: ScriptMethod,
        bends: Mapping[str, Any] | None = None,
        outputs: Sequence[str] | None = None,
        after_bends: bool = False,
        cut: Sequence[str] = (),
        compiler: Compiler | None = None,
    ) -> None:
        bends = dict(bends or {})
        for name in [*bends, *(outputs or ()), *cut]:
            method.check(name, "bend" if name in bends else "read or replace")
        for name in outputs or ():
            if name in method.mutated:
                raise BendingError(
                    f"cannot read {name!r} of method {method.name!r}: the node "
                    f"{method.mutated[name]} later writes it in place; read a value after it"
                )
        number_inputs(bends)
        self.method = method
        self.bends = bends
        self.outputs = list(outputs) if outputs is not None else None
        self.after_bends = after_bends
        self.cut = list(cut)
        self.runtime_inputs = tuple(dict.fromkeys(k for b in bends.values() for k in getattr(b, "inputs", ())))
        compiled = {
            name: compiler(bend, f"{method.name}:{name}") if compiler is not None else None
            for name, bend in bends.items()
        }
        self.compiled = {name: c for name, c in compiled.items() if c is not None}
        self._variants: dict[tuple, _Variant] = {}
        self._lock = threading.Lock()
        first, self.arg_names = self._build((), python=True)  # the arguments a cut program still reads
        self._variants[((), True)] = first
        self.input_names = [*self.arg_names, *self.cut, *self.runtime_inputs]
        self.optional_inputs = tuple(n for n in self.arg_names if n in method.defaults)

    def _build(self, weights: Sequence[str], python: bool) -> tuple[_Variant, list[str]]:
        method = self.method
        graph = method.graph.copy()
        values, _ = named_values(graph)
        reads = attribute_paths(graph)
        for name in self.cut:
            given = graph.addInput(re.sub(r"\W", "_", name))
            given.setType(values[name].type())
            values[name].replaceAllUsesWith(given)
            values[name] = given
        for weight in weights:
            given = graph.addInput(re.sub(r"\W", "_", weight))
            given.setType(reads[weight][0].type())
            for read in reads[weight]:
                read.replaceAllUsesWith(given)
        before = {name: values[name] for name in self.outputs or ()}
        parameters: dict[int, tuple[Any, torch._C.Value]] = {}
        tensors: list[torch.Tensor] = []
        steps: list[Callable] = []  # the graph holds them by key only
        for name in self.bends:
            compiled = None if python else self.compiled.get(name)
            if compiled is None:
                steps.append(_step(self.bends, name))
                values[name] = insert_after(graph, values[name], steps[-1])
                continue
            extra = []
            for p in compiled.parameters:
                if id(p) not in parameters:
                    given = graph.addInput(f"p_{p.name}")
                    given.setType(_TYPES[p.type].get())
                    parameters[id(p)] = (p, given)
                extra.append(parameters[id(p)][1])
            for t in compiled.tensors:
                given = graph.addInput(f"t{len(tensors)}")
                given.setType(torch._C.TensorType.get())
                tensors.append(t)
                extra.append(given)
            values[name] = splice(graph, compiled.graph, values[name], extra)
        if self.outputs is not None:
            set_outputs(graph, [values[n] if self.after_bends else before[n] for n in self.outputs])
        if self.cut:
            drop_skipped_writes(graph, list(graph.inputs())[1 : 1 + len(method.input_names)])
        torch._C._jit_pass_dce(graph)
        arg_names = list(method.input_names)
        if self.cut:  # a cut program takes only the arguments it still reads
            inputs = list(graph.inputs())
            for i in reversed(range(len(arg_names))):
                if not inputs[1 + i].uses():
                    graph.eraseInput(1 + i)
                    del arg_names[i]
        function = torch._C._create_function_from_graph(f"bent_{method.name}", graph)
        return _Variant(function, [p for p, _ in parameters.values()], tensors, steps), arg_names

    def variant(self, weights: tuple[str, ...], python: bool = False) -> _Variant:
        """The program compiled for these weight inputs (Python calls for every bend with ``python=True``)."""
        python = python or not self.compiled
        key = (weights, python)
        found = self._variants.get(key)
        if found is None:
            with self._lock:
                found = self._variants.get(key)
                if found is None:
                    found = self._variants[key] = self._build(weights, python)[0]
        return found

    def bind(self, view: ScriptView, bends: Any = None) -> "BoundScriptProgram | OwnCall":
        """This program running with `view`'s tensors (with `bends`, a namespace by activation name, in place of
        its own bends when given: they run as Python calls)."""
        weights = tuple(name for name in view.tensors if name in self.method.weights)
        if not self.bends and not weights and self.outputs is None and not self.cut:
            return OwnCall(self.method.module, self.method.name, self.method.bind if self.method.specialised else None)
        variant = self.variant(weights, python=bends is not None)
        return BoundScriptProgram(self, variant, [view.tensors[name] for name in weights], bends)


class BoundScriptProgram:
    """A compiled program and the tensors it is given at each call."""

    def __init__(self, program: ScriptProgram, variant: _Variant, weights: list[torch.Tensor], bends: Any) -> None:
        self.program = program
        self.runtime_inputs = program.runtime_inputs
        self._variant = variant
        self._weights = weights
        self._bends = bends
        self._bind = program.method.bind
        self._module = program.method.module._c  # the C++ module: no conversion at each call

    def _call(self, inputs: list[Any], runtime: Mapping[str, Any]) -> Any:
        variant = self._variant
        inputs += self._weights
        if variant.parameters:
            inputs += [p.value for p in variant.parameters]
        if variant.tensors:
            inputs += variant.tensors
        if variant.steps:
            previous = getattr(_runtime, "values", None), getattr(_runtime, "bends", None)
            _runtime.values, _runtime.bends = runtime, self._bends
            try:
                out = variant.function(self._module, *inputs)
            finally:
                _runtime.values, _runtime.bends = previous
        else:
            out = variant.function(self._module, *inputs)
        if self.program.outputs is not None:
            return dict(zip(self.program.outputs, out, strict=True))
        return out

    def run(self, args: tuple, kwargs: Mapping[str, Any], runtime: Mapping[str, Any]) -> Any:
        """Run as the method is called: its arguments, and run-time inputs of callbacks by name."""
        if self.program.cut:
            raise BendingError("a program with cut values runs through call_named")
        return self._call(self._bind(args, kwargs), runtime)

    def call_named(self, values: Mapping[str, Any]) -> Any:
        """Run with the method's arguments, cut values and run-time inputs given by name."""
        program = self.program
        defaults = program.method.defaults
        missing = [n for n in program.arg_names + program.cut if n not in values and n not in defaults]
        if missing:
            raise BendingError(f"method {program.method.name!r} needs {missing} here (given: {sorted(values)})")
        args = [values[n] if n in values else defaults[n] for n in program.arg_names]
        for name in program.method.given:
            if name in program.arg_names and args[program.arg_names.index(name)] is None:
                raise program.method.none_given(name)
        runtime = {k: values[k] for k in program.runtime_inputs if k in values}
        return self._call(args + [values[n] for n in program.cut], runtime)  # graph order: args, cut, weights


class OwnCall:
    """A method of the module itself, as a program with nothing to change runs it."""

    runtime_inputs: tuple[str, ...] = ()

    def __init__(
        self, module: torch.jit.ScriptModule, fn: str, guard: Callable[[tuple, Mapping[str, Any]], Any] | None = None
    ) -> None:
        self.call = getattr(module, fn)
        self.guard = guard  # checks the arguments a trace was specialised to

    def run(self, args: tuple, kwargs: Mapping[str, Any], runtime: Mapping[str, Any]) -> Any:
        if self.guard is not None:
            self.guard(args, kwargs)
        return self.call(*args, **kwargs)
