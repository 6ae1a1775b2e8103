"""Python source for an exportable bended module: one class whose methods are the traced graphs.

    >>> source = ModuleSource(bended.engine, ["decode"])
    >>> module = source.instantiate(torch.nn.Module)      # plain Python module, ready for torch.jit.script

The generated class holds a deep copy of the wrapped model (``self.m``) whose bent weights
are recomputed by ``_bend_w<i>`` and put in place as whole new tensors; each activation bend is a method
(``_bend_<i>``) built from its callbacks' ``script`` expressions; each bending parameter is
an attribute holding a one-element tuple, with ``get_<name>`` and ``set_<name>`` methods
(the convention nn~ reads), and the setter checks the range and updates the weights.
``bending_parameters()`` lists them: one ``Dict[str, str]`` per parameter with the keys
``name``, ``type`` (``float``, ``int`` or ``bool``), ``min`` and ``max`` (``""`` when open)
and ``value`` (the current value). ``reset_caches()`` zeros the opted-in buffers the export holds
(``tb.BendedModule(model, buffers=[...])``: a streaming model's caches), so a host can start a
new stream from silence.

Every name written into the source goes through `python_name` (a name: an identifier, refused otherwise) or
`attribute_path` (a path of submodules, quoted where needed, refused where quoting would not spell it back):
a model's submodule names are data, and a crafted one must never run as code during an export.
"""

from __future__ import annotations

import ast
import builtins
import copy
import dataclasses
import inspect
import itertools
import linecache
import operator
import textwrap
import typing
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..bending.callback import BendingCallback, CallbackChain
from ..bending.parameter import BendingParameter, Expression, LiveValue
from ..core.bends import activation_bends
from ..errors import ExportError
from ..naming import is_python_name, is_quotable
from ..runtime.program import ActivationBend, check_graph_names
from ..tracing.record import TracedMethod
from ..tracing.surgery import bent_copy
from ..tracing.tracer import check_decision

if TYPE_CHECKING:
    from ..core.engine import Engine

_counter = itertools.count()
_SYMBOLS = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/", operator.pow: "**"}


def python_name(name: Any, what: str) -> str:
    """`name`, to be written as a name into generated source; an ExportError naming `what` unless it is an
    identifier that is not a keyword and that NFKC normalisation leaves as it is."""
    if not is_python_name(name):
        raise ExportError(
            f"{what} {name!r} cannot be written into the exported code: it must be a Python identifier "
            "that is not a keyword and is unchanged by NFKC normalisation; rename it"
        )
    return name


def attribute_path(base: str, path: str) -> str:
    """``self.m`` + ``decoder.net.0.weight`` -> ``getattr(self.m.decoder.net, "0").weight``: a name that is not
    a plain identifier is quoted, and refused when the quoted form would not read back as itself (a quote, a
    backslash, an unprintable character: a crafted submodule name is never written as code)."""
    code = base
    for atom in path.split("."):
        if is_python_name(atom):
            code = f"{code}.{atom}"
        elif is_quotable(atom):
            code = f'getattr({code}, "{atom}")'
        else:
            raise ExportError(
                f"the model's submodule or tensor name {atom!r} (in {path!r}) cannot be written into "
                "exported code safely (it holds a quote, a backslash or an unprintable character); "
                "rename it in the model"
            )
    return code


def check_parameter_names(names: Iterable[str], taken: Iterable[str], where: str) -> None:
    """Refuse bending parameter names that would clash in an export: an attribute or method `taken` in it
    (a traced method, ``forward``, ``training``...), another parameter's ``get_``/``set_`` accessor, or a
    private name."""
    names = list(names)
    taken = set(taken) | {f"{kind}_{n}" for n in names for kind in ("get", "set")}
    for name in names:
        python_name(name, "the bending parameter")
        if name in taken or name.startswith("_"):
            raise ExportError(
                f"a bending parameter named {name!r} would clash with the method or attribute "
                f"{name!r} of {where}; rename the parameter"
            )


def skeleton(model: torch.nn.Module, paths: set[str]) -> torch.nn.Module:
    """Plain containers holding only the submodules and tensors of `model` named by `paths`.

    The generated code calls leaf modules and reads tensors by path; the model's own
    `forward` methods are left out, so they need not compile to TorchScript.
    """
    modules = dict(model.named_modules())
    kept = sorted(p for p in paths if p in modules)
    root = torch.nn.Module()
    for path in sorted(paths):
        if any(path == k or path.startswith(k + ".") for k in kept) and path not in kept:
            continue  # inside a module that is kept whole
        *parents, leaf = path.split(".")
        holder, source = root, model
        for atom in parents:
            source = getattr(source, atom)
            if atom not in holder._modules:
                holder.add_module(atom, torch.nn.Module())
            holder = holder._modules[atom]  # type: ignore[assignment]  # a module, added just above if missing
        value = getattr(source, leaf)
        if isinstance(value, torch.nn.Module):
            holder.add_module(leaf, value)
        elif isinstance(value, torch.nn.Parameter):
            holder.register_parameter(leaf, value)
        else:
            holder.register_buffer(leaf, value)
    return root


class ScriptContext:
    """What callbacks' ``script`` expressions refer to: parameters, tensors, functions and run-time inputs.

    With ``live_tensors=True`` (torch.export), a parameter's attribute holds a 0-d tensor
    given at each call, and is used as a tensor rather than converted to a Python number.
    """

    def __init__(self, live_tensors: bool = False) -> None:
        self.live_tensors = live_tensors
        self.parameters: dict[str, BendingParameter] = {}
        self.tensors: dict[str, torch.Tensor] = {}
        self.functions: dict[str, Callable] = {}
        self.inputs: list[str] = []  # run-time inputs used by the bend being generated

    def value(self, v: Any) -> str:
        """Code for a number, a bending parameter (``self.<name>[0]``) or an expression of them."""
        if isinstance(v, BendingParameter):
            python_name(v.name, "the bending parameter")
            if self.parameters.setdefault(v.name, v) is not v:
                raise ExportError(f"two different bending parameters are named {v.name!r}")
            return f"self.{v.name}[0]"
        if isinstance(v, Expression):
            operands = [self.value(o) for o in v.operands]
            if v.op in _SYMBOLS and len(operands) == 2:
                return f"({operands[0]} {_SYMBOLS[v.op]} {operands[1]})"
            if v.op is operator.neg:
                return f"(-{operands[0]})"
            if v.op is operator.abs:
                return f"abs({operands[0]})"
            raise ExportError(f"cannot export an expression using {v.op!r}")
        if isinstance(v, LiveValue):
            raise ExportError(f"cannot export the live value {v!r}")
        if isinstance(v, (bool, int, float)):
            return repr(v)
        raise ExportError(f"cannot export a value of type {type(v).__name__}")

    def float(self, v: Any) -> str:
        code = self.value(v)
        return code if self.live_tensors and isinstance(v, LiveValue) else f"float({code})"

    def bool(self, v: Any) -> str:
        code = self.value(v)
        return code if self.live_tensors and isinstance(v, LiveValue) else f"bool({code})"

    def tensor(self, t: torch.Tensor, hint: str) -> str:
        name = python_name(f"_t{len(self.tensors)}_{hint}", "the tensor")
        self.tensors[name] = t.detach().clone()
        return f"self.{name}"

    def function(self, fn: Callable, hint: str | None = None) -> str:
        for name, known in self.functions.items():
            if known is fn:
                return name
        hint = hint or getattr(fn, "__name__", "")
        name = python_name(f"_fn{len(self.functions)}_{hint if is_python_name(hint) else 'function'}", "the function")
        self.functions[name] = fn
        return name

    def input(self, name: str) -> str:
        python_name(name, "the run-time input")
        if name not in self.inputs:
            self.inputs.append(name)
        return name


def _steps(callback: BendingCallback, state: Any) -> list[tuple[BendingCallback, Any]]:
    if isinstance(callback, CallbackChain):
        return [pair for cb, st in zip(callback.callbacks, state) for pair in _steps(cb, st)]
    return [(callback, state)]


def _bend_lines(steps: Sequence[tuple[BendingCallback, Any]], ctx: ScriptContext, target: str) -> list[str]:
    lines = []
    for cb, state in steps:
        try:
            lines.append(f"x = {cb.script('x', state, ctx)}")
        except NotImplementedError as error:
            raise ExportError(f"the bend of {target}: {error}") from None
    return lines


def _distributions_as_parameters(graph: torch.fx.Graph, fn: str, ours_too: bool = False) -> None:
    """A returned `torch.distributions` object becomes the dict of its tensor parameters, by constructor argument
    name (``{"loc": ..., "scale": ...}`` for a Normal): TorchScript has no distributions.

    With `ours_too` (torch.export, whose outputs are tensors), a returned `torchbend.distributions` object
    becomes that dict too; the method may still use it (``posterior.rsample()``). Without, it stays as it is:
    TorchScript compiles those classes.
    """
    ours: tuple[type, ...] = ()
    if ours_too:
        from ..distributions import DISTRIBUTIONS as ours
    output = graph.output_node()
    for node in list(graph.nodes):
        cls = node.target if node.op == "call_function" else None
        if not (cls in ours or isinstance(cls, type) and issubclass(cls, torch.distributions.Distribution)):
            continue
        bound = inspect.signature(cls.__init__).bind(None, *node.args, **node.kwargs).arguments
        params = {k: v for k, v in bound.items() if isinstance(v, torch.fx.Node)}
        if cls not in ours:
            for user in list(node.users):  # `posterior.loc` in the method reads the argument it was made with
                if user.op == "call_function" and user.target is getattr and user.args[1:] and user.args[1] in params:
                    user.replace_all_uses_with(params[user.args[1]])
                    graph.erase_node(user)
            if any(user is not output for user in node.users):
                uses = ", ".join(user.name for user in node.users if user is not output)
                raise ExportError(
                    f"{fn} uses the {cls.__name__} distribution {node.name} inside the method ({uses}); "
                    "only a distribution returned as it is, or its parameters, can be exported; "
                    "torchbend.distributions has distributions that export whole"
                )
        output.args = torch.fx.node.map_aggregate(
            output.args,
            lambda a, node=node, params=params: (  # type: ignore[misc]
                params if a is node else a
            ),
        )
        if not node.users:
            graph.erase_node(node)


def _is_container(target: Any) -> bool:
    return isinstance(target, type) and (dataclasses.is_dataclass(target) or issubclass(target, dict))


def _containers_as_dicts(graph: torch.fx.Graph, record: TracedMethod) -> None:
    """A model output made in the method (a dataclass or dict subclass: Hugging Face's ``ModelOutput``,
    diffusers' ``...Output``) becomes the dict of its tensor fields; fields holding other objects (a key/value
    cache rebuilt by the trace, None) are left out, and what only they used is removed. A field read inside
    the method (``outputs.last_hidden_state``) reads the value it was made with."""

    def is_tensor(a: Any) -> bool:
        info = record.activations.get(a.name) if isinstance(a, torch.fx.Node) else None
        return info is not None and info.is_tensor

    for node in list(graph.nodes):
        if node.op != "call_function" or not _is_container(node.target) or node.args:
            continue
        fields = dict(node.kwargs)
        for user in list(node.users):  # outputs.logits / outputs["logits"] / outputs[0]
            if user.op == "call_function" and user.target in (getattr, operator.getitem) and len(user.args) == 2:
                key = user.args[1]
                present = [k for k, v in fields.items() if v is not None]
                field = key if isinstance(key, str) else present[key] if isinstance(key, int) else None
                if field in fields and isinstance(fields[field], torch.fx.Node):
                    user.replace_all_uses_with(fields[field])
                    graph.erase_node(user)
        if any(user.op != "output" for user in node.users):
            continue  # used in some other way: left as it is (TorchScript will say what it cannot compile)
        tensors = {k: v for k, v in fields.items() if is_tensor(v)}
        output = graph.output_node()
        output.args = torch.fx.node.map_aggregate(
            output.args,
            lambda a, node=node, tensors=tensors: (  # type: ignore[misc]
                tensors if a is node else a
            ),
        )
        graph.erase_node(node)
    removed = True
    while removed:  # objects rebuilt for the container's other fields (a key/value cache), and what only they read
        removed = False
        for node in reversed(list(graph.nodes)):
            if node.users or node.op not in ("call_function", "get_attr"):
                continue
            rebuilt = getattr(node.target, "__name__", "").startswith("rebuild_") or _is_container(node.target)
            if node.op == "get_attr" or rebuilt or node.target in (getattr, operator.getitem):  # never a write
                graph.erase_node(node)
                removed = True


def _scriptable_calls(graph: torch.fx.Graph) -> None:
    """Calls TorchScript types differently from Python, or lacks, written as it takes them: ``torch.tensor([])``
    (an empty list is a list of tensors to TorchScript) is ``torch.empty(0)``, ``x.bool()`` is ``x.to(torch.bool)``,
    ``F.pad(x, p, value=0)`` is ``F.pad(x, p, value=0.0)``."""
    functions = torch._C._VariableFunctions  # torch.tensor itself, even while a thread traces
    for node in graph.nodes:
        if node.target is torch.nn.functional.pad and type(node.kwargs.get("value")) is int:
            node.kwargs = {**node.kwargs, "value": float(node.kwargs["value"])}  # TorchScript: a float or None
        if node.op == "call_method" and node.target == "bool" and len(node.args) == 1 and not node.kwargs:
            node.target, node.args = "to", (node.args[0], torch.bool)
        if node.op == "call_function" and node.target is functions.tensor and node.args and node.args[0] == []:
            node.target, node.args = functions.empty, (0, *node.args[1:])


_SEQUENCES = {"Iterable", "Sequence", "Collection", "MutableSequence"}
_SIZE_METHODS = {"reshape", "view", "expand", "repeat", "permute", "new_zeros", "new_ones", "new_empty", "new_full"}


class _AsMethod(ast.NodeTransformer):
    """A function's code as a method: its module arguments read the attributes they are, ``Iterable[int]`` and
    kin are ``List[int]``."""

    def __init__(self, modules: dict[str, str]) -> None:
        self.modules = modules

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in self.modules and isinstance(node.ctx, ast.Load):
            return ast.copy_location(ast.parse(self.modules[node.id], mode="eval").body, node)
        return node

    def visit_Call(self, node: ast.Call) -> Any:
        """``x.reshape(*batch, -1, n)`` -> ``x.reshape(list(batch) + [-1, n])``: TorchScript unpacks no argument."""
        self.generic_visit(node)
        if (
            isinstance(node.func, ast.Attribute)
            and node.func.attr in _SIZE_METHODS
            and any(isinstance(a, ast.Starred) for a in node.args)
        ):
            parts: list[ast.expr] = []
            for a in node.args:
                if isinstance(a, ast.Starred):
                    parts.append(ast.Call(ast.Name("list", ast.Load()), [a.value], []))
                elif parts and isinstance(parts[-1], ast.List):
                    parts[-1].elts.append(a)
                else:
                    parts.append(ast.List([a], ast.Load()))
            size = parts[0]
            for part in parts[1:]:
                size = ast.BinOp(size, ast.Add(), part)
            node.args = [size]
        return node

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        self.generic_visit(node)
        base = node.value
        name = base.attr if isinstance(base, ast.Attribute) else base.id if isinstance(base, ast.Name) else ""
        if name in _SEQUENCES:
            node.value = ast.copy_location(ast.Name("List", ast.Load()), base)
        return node


def function_as_method(fn: Callable, name: str, modules: dict[str, str]) -> str | None:
    """The source of `fn` (a function the traced method calls, such as one kept whole by `torch.fx.wrap`) as
    method `name`, whose arguments named in `modules` are read from the module's attributes instead
    (``{"pqmf": "self.m.pqmf"}``); None when its source cannot be read or it takes ``*args`` / ``**kwargs``."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return None
    fdef = tree.body[0] if tree.body else None
    if not isinstance(fdef, ast.FunctionDef) or fdef.args.vararg or fdef.args.kwarg or fdef.args.posonlyargs:
        return None
    fdef.name, fdef.decorator_list = name, []
    args = fdef.args
    padded: list[ast.expr | None] = [None] * (len(args.args) - len(args.defaults))
    kept = [(a, d) for a, d in zip(args.args, padded + list(args.defaults)) if a.arg not in modules]
    args.args = [ast.arg("self"), *(a for a, _ in kept)]
    defaults = [d for _, d in kept]
    while defaults and defaults[0] is None:
        defaults.pop(0)
    if None in defaults:
        return None  # a module argument between arguments with defaults: keep it as it is
    args.defaults = [d for d in defaults if d is not None]
    fdef = _AsMethod(modules).visit(fdef)
    return ast.unparse(ast.fix_missing_locations(fdef)) + "\n"


class ModuleSource:
    """The source of an exportable class for the traced `methods` of `bended`, with its bends."""

    def __init__(
        self,
        engine: Engine,
        methods: Sequence[str] | None = None,
        live_tensors: bool = False,
        distributions_as_dicts: bool = False,
    ) -> None:
        with engine.lock:  # one consistent state: bends, records and values as they are now
            self.snapshot = engine.snapshot()
        methods = list(self.snapshot.records if methods is None else methods)
        if not methods:
            raise ExportError("nothing to export: trace a method first (bended.trace(...))")
        self.engine = engine
        self.ctx = ScriptContext(live_tensors)
        self.distributions_as_dicts = distributions_as_dicts  # also torchbend.distributions (torch.export)
        self.constants: dict[str, torch.Tensor] = {}
        self.globals: dict[str, Any] = {
            "torch": torch,
            "typing": typing,
            "Optional": typing.Optional,
            "List": list,
            "Tuple": tuple,
        }
        self.weights: list[tuple[str, torch.Tensor]] = []  # (weight name, original value)
        self.weight_parameters: list[set[str]] = []  # the parameters each bent weight reads
        self.paths: set[str] = set()  # what the generated code reads from the model: modules and tensors
        self.bases = self.snapshot.sources  # the weight version mix in use is baked into the export
        chunks = [self._bent_weight_methods()]
        for fn in methods:
            record = self.snapshot.records.get(fn)
            if not isinstance(record, TracedMethod):
                raise ExportError(
                    f"method {fn!r} is not traced as a graph (traced: {list(self.snapshot.records)}); "
                    "only traced methods can be exported"
                )
            chunks.append(self._method(fn, record))
        chunks.append(self._update_weights())
        chunks += [self._accessors(p) for p in self.ctx.parameters.values()]
        chunks.append(self._metadata())
        chunks.append(self._reset_caches())
        self.methods = methods
        self.source = "\n".join(chunks)

    # --- pieces of the class ---------------------------------------------------------------------
    def _bent_weight_methods(self) -> str:
        """``_bend_w<i>`` returns bent weight i, computed from its original ``_w<i>``."""
        chunks = []
        plan = {
            name: [pair for cb, state in steps for pair in _steps(cb, state)]
            for name, steps in self.snapshot.plan.items()
        }
        for i, (name, steps) in enumerate(plan.items()):
            original = self.bases.get(name, self.engine.weights.tensor(name))  # the version in use, if any
            self.weights.append((name, original.detach().clone()))
            self.weight_parameters.append({p.name for cb, _ in steps for p in cb.live_parameters()})
            self.paths.add(name)
            lines = [f"x = self._w{i}", *_bend_lines(steps, self.ctx, name), "return x"]
            chunks.append(f"def _bend_w{i}(self) -> torch.Tensor:\n" + textwrap.indent("\n".join(lines), "    ") + "\n")
        return "\n".join(chunks)

    def _writes(self, i: int) -> list[str]:
        """Put a newly computed bent weight i in place: a whole new tensor in every slot that holds it, never an
        in-place write, so a call running in another thread sees the old weight or the new one."""
        name = self.weights[i][0]
        aliases = [a for a in self.engine.weights.aliases(name) if a == name or a in self.paths]
        return [f"w = self._bend_w{i}()", *(f"{attribute_path('self.m', a)} = w" for a in aliases)]

    def _update_weights(self) -> str:
        """``_update_weights`` puts every bent weight in place; ``_bent_weights`` returns them by name."""
        update = [line for i in range(len(self.weights)) for line in self._writes(i)] or ["pass"]
        values = ", ".join(f"{name!r}: self._bend_w{i}()" for i, (name, _) in enumerate(self.weights))
        return (
            "def _update_weights(self) -> None:\n" + textwrap.indent("\n".join(update), "    ") + "\n\n"
            "@torch.jit.ignore\ndef _bent_weights(self) -> typing.Dict[str, torch.Tensor]:\n"
            f"    return {{{values}}}\n"
        )

    def _method(self, fn: str, record: TracedMethod) -> str:
        bends = activation_bends(self.snapshot.steps.get(fn, {}))
        bends = {node: ActivationBend([(cb, state) for cb, state, _ in bend.steps]) for node, bend in bends.items()}
        runtime = tuple(dict.fromkeys(k for bend in bends.values() for k in bend.inputs))
        graph, inputs, _ = bent_copy(record.graph, record.constants, bends, runtime)
        python_name(fn, "the method")
        check_graph_names(graph, f"cannot export {fn}", ExportError)
        bend_methods = []
        for node in list(graph.nodes):
            node.meta.pop("is_wrapped", None)  # torch.fx.wrap-ped functions are plain calls in a class
            if node.op == "call_function" and node.target is check_decision:
                graph.erase_node(node)  # exported programs keep the traced path without re-checking it
            elif node.op == "get_attr" and node.target.startswith("c."):
                name = python_name(f"_c_{fn}_{node.target[2:]}", "the constant")
                self.constants[name] = record.constants[node.target[2:]]
                node.target = name
            elif node.op in ("call_module", "get_attr") and node.target.startswith("m."):
                self.paths.add(node.target[2:])
            elif node.op == "call_module" and node.target.startswith("b."):
                activation = node.target[2:]
                node.target = python_name(f"_bend_{fn}_{activation}", "the bend")
                bend_methods.append(self._bend_method(node.target, f"{fn}:{activation}", bends[activation]))
        for node in list(graph.nodes):
            if node.op == "call_function" and inspect.isfunction(node.target) and self._module_arguments(node):
                bend_methods.append(self._function_method(node))
        _distributions_as_parameters(graph, fn, self.distributions_as_dicts)
        _containers_as_dicts(graph, record)
        _scriptable_calls(graph)
        for placeholder in inputs.values():
            placeholder.type = typing.Optional[torch.Tensor]  # noqa: UP045 (TorchScript reads it)
        graph.output_node().type = None  # TorchScript infers the return type
        codegen = torch.fx.graph.CodeGen()
        codegen._func_name = fn  # the generated function is the method itself
        graph.set_codegen(codegen)
        code = graph.python_code(root_module="self")
        for name, value in code.globals.items():
            if self.globals.setdefault(name, value) is not value:
                raise ExportError(f"two different objects are named {name!r} in the generated code")
        src = code.src.strip("\n")
        decorator = "" if fn == "forward" else "@torch.jit.export\n"
        return "\n".join(bend_methods) + "\n" + decorator + textwrap.dedent(src) + "\n"

    def _module_arguments(self, node: torch.fx.Node) -> dict[str, str]:
        """The arguments of a function call that are submodules of the model (``{"pqmf": "pqmf"}``), by name."""
        try:
            bound = inspect.signature(node.target).bind(*node.args, **node.kwargs).arguments  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return {}
        found = {}
        for name, value in bound.items():
            target = value.target if isinstance(value, torch.fx.Node) and value.op == "get_attr" else None
            if isinstance(target, str) and target.startswith("m."):
                try:
                    self.engine.module.get_submodule(target[2:])
                except AttributeError:
                    continue
                found[name] = target[2:]
        return found

    def _function_method(self, node: torch.fx.Node) -> str:
        """A function called with submodules as arguments (RAVE's ``_pqmf_decode(pqmf, x, ...)``, kept whole by
        `torch.fx.wrap`) becomes a method reading them as attributes; TorchScript passes no module as an argument."""
        fn: Any = node.target
        modules = self._module_arguments(node)
        name = python_name(
            f"_call_{getattr(fn, '__name__', 'function').strip('_')}_{len(self.constants)}_{node.name}", "the function"
        )
        source = function_as_method(fn, name, {k: attribute_path("self.m", p) for k, p in modules.items()})
        if source is None:
            raise ExportError(
                f"{node.name} calls {fn.__qualname__} with the submodules {sorted(modules.values())} as "
                "arguments, and its source cannot be read to make it a method; TorchScript cannot pass "
                "modules to functions"
            )
        for global_name in fn.__code__.co_names:  # what the function's code reads from its module
            if global_name in fn.__globals__ and not hasattr(builtins, global_name):
                if self.globals.setdefault(global_name, fn.__globals__[global_name]) is not fn.__globals__[global_name]:
                    raise ExportError(
                        f"{fn.__qualname__} reads {global_name!r}, which names another object in the exported code"
                    )
        self.paths.update(modules.values())
        bound = inspect.signature(fn).bind(*node.args, **node.kwargs).arguments
        node.op, node.target, node.args = "call_module", name, ()
        node.kwargs = {k: v for k, v in bound.items() if k not in modules}
        return source

    def _bend_method(self, name: str, target: str, bend: Any) -> str:
        self.ctx.inputs = []
        lines = _bend_lines([pair for cb, state, _ in bend.steps for pair in _steps(cb, state)], self.ctx, target)
        args = "".join(f", {k}: Optional[torch.Tensor] = None" for k in self.ctx.inputs)
        body = "\n".join(lines + ["return x"])
        return f"def {name}(self, x: torch.Tensor{args}) -> torch.Tensor:\n" + textwrap.indent(body, "    ") + "\n"

    def _accessors(self, p: BendingParameter) -> str:
        kind = p.type.__name__
        low, high = p.range
        checks = ""
        if low is not None:
            checks += (
                f'    if value < {p.type(low)!r}:\n        raise ValueError("{p.name}: value below its range '
                f'[{low}, {high}]")\n'
            )
        if high is not None:
            checks += (
                f'    if value > {p.type(high)!r}:\n        raise ValueError("{p.name}: value above its range '
                f'[{low}, {high}]")\n'
            )
        # a setter recomputes only the weights that read this parameter; one read by activations only is a store
        writes = [line for i, names in enumerate(self.weight_parameters) if p.name in names for line in self._writes(i)]
        body = "".join(f"    {line}\n" for line in writes)
        return (
            f"@torch.jit.export\ndef get_{p.name}(self) -> {kind}:\n    return self.{p.name}[0]\n\n"
            f"@torch.jit.export\ndef set_{p.name}(self, value: {kind}) -> int:\n{checks}"
            f"    self.{p.name} = (value,)\n{body}    return 0\n"
        )

    def _metadata(self) -> str:
        """``bending_parameters()``: one dict of strings per parameter (name, type, min, max, value)."""
        entries = []
        for p in self.ctx.parameters.values():
            low, high = (("" if v is None else repr(p.type(v))) for v in p.range)
            entries.append(
                f'{{"name": "{p.name}", "type": "{p.type.__name__}", "min": "{low}", "max": "{high}", '
                f'"value": str(self.{p.name}[0])}}'
            )
        body = "[" + ", ".join(entries) + "]"
        return (
            "@torch.jit.export\ndef bending_parameters(self) -> typing.List[typing.Dict[str, str]]:\n"
            f"    out: typing.List[typing.Dict[str, str]] = {body}\n    return out\n"
        )

    def _reset_caches(self) -> str:
        """``reset_caches()``: zeros every opted-in buffer (streaming caches) the export holds; returns how many."""
        held = [
            n for n in self.engine.buffer_names if n in self.paths or any(n.startswith(p + ".") for p in self.paths)
        ]
        body = "".join(f"    {attribute_path('self.m', n)}.zero_()\n" for n in held)
        return f"@torch.jit.export\ndef reset_caches(self) -> int:\n{body}    return {len(held)}\n"

    # --- the class and an instance -----------------------------------------------------------------
    def instantiate(self, base: type = torch.nn.Module) -> torch.nn.Module:
        """An instance of the generated class (subclassing `base`), holding a copy of the model."""
        check_parameter_names(
            self.ctx.parameters,
            {*dir(base), "m", "bending_parameters", "reset_caches", *self.methods},
            "the exported module",
        )
        filename = f"<torchbend export #{next(_counter)}>"
        class_source = "class BendedExport(BASE):\n" + textwrap.indent(self.source, "    ")
        linecache.cache[filename] = (len(class_source), None, class_source.splitlines(True), filename)
        namespace = {**self.globals, **self.ctx.functions, "BASE": base, "__name__": "torchbend_export"}
        exec(compile(class_source, filename, "exec"), namespace)
        cls = namespace["BendedExport"]
        module = cls.__new__(cls)
        base.__init__(module)  # type: ignore[misc]  # the base class's own __init__ on the new instance
        try:
            model = copy_model(self.engine.module)
            with torch.no_grad():
                for name, tensor in self.bases.items():
                    model.get_parameter(name).copy_(tensor)
        except Exception as error:
            raise ExportError(f"the model cannot be copied for export: {error}") from error
        module.m = skeleton(model, self.paths)
        for name, _ in self.weights:  # bent weights are swapped whole by setters: plain tensors, not parameters
            for alias in self.engine.weights.aliases(name):
                owner_path, _, key = alias.rpartition(".")
                try:
                    owner = module.m.get_submodule(owner_path)
                except AttributeError:
                    continue
                if key in owner._parameters:
                    owner.register_buffer(key, owner._parameters.pop(key).detach())
        for p in module.m.parameters():
            p.requires_grad_(False)
        for i, (_, original) in enumerate(self.weights):
            module.register_buffer(f"_w{i}", original)
        for name, tensor in {**self.ctx.tensors, **self.constants}.items():
            module.register_buffer(name, tensor)
        for name, p in self.ctx.parameters.items():
            setattr(module, name, (torch.tensor(p.value),) if self.ctx.live_tensors else (p.value,))
        if not self.ctx.live_tensors:
            module._update_weights()
        return module


def copy_model(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of `module`; tensors it holds that autograd computed (the weight a `weight_norm` hook
    leaves after a call, a streaming cache written while gradients were on) are copied detached, since
    deepcopy refuses them."""
    memo: dict[int, Any] = {}
    for sub in module.modules():
        for value in [*vars(sub).values(), *sub._buffers.values()]:
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                memo[id(value)] = value.detach().clone()
    return copy.deepcopy(module, memo)
