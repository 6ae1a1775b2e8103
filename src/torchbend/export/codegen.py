"""Python source for an exportable bended module: one class whose methods are the traced graphs.

    >>> source = ModuleSource(bended, ["decode", "forward"])
    >>> module = source.instantiate(torch.nn.Module)      # plain Python module, ready for torch.jit.script

The generated class holds a deep copy of the wrapped model (``self.m``) whose bent weights
are recomputed in place by ``_update_weights``; each activation bend is a method
(``_bend_<i>``) built from its callbacks' ``script`` expressions; each bending parameter is
an attribute holding a one-element tuple, with ``get_<name>`` and ``set_<name>`` methods
(the convention nn~ reads), and the setter checks the range and updates the weights.
``bending_parameters()`` lists them: one ``Dict[str, str]`` per parameter with the keys
``name``, ``type`` (``float``, ``int`` or ``bool``), ``min`` and ``max`` (``""`` when open)
and ``value`` (the current value).
"""

from __future__ import annotations

import copy
import itertools
import keyword
import linecache
import operator
import re
import textwrap
import typing
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch

from ..bending.callback import BendingCallback, CallbackChain
from ..bending.parameter import BendingParameter, Expression, LiveValue
from ..errors import BendingError
from ..tracing.record import TracedMethod
from ..tracing.surgery import bent_copy
from ..tracing.tracer import check_decision

if TYPE_CHECKING:
    from ..bended import BendedModule

_counter = itertools.count()
_SYMBOLS = {operator.add: "+", operator.sub: "-", operator.mul: "*", operator.truediv: "/", operator.pow: "**"}


class ExportError(BendingError):
    """A bended module that cannot be exported as asked; the message says which part and why."""


def attribute_path(base: str, path: str) -> str:
    """``self.m`` + ``decoder.net.0.weight`` -> ``getattr(self.m.decoder.net, "0").weight``."""
    code = base
    for atom in path.split("."):
        code = f"{code}.{atom}" if atom.isidentifier() and not keyword.iskeyword(atom) else f'getattr({code}, "{atom}")'
    return code


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
            holder = holder._modules[atom]
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
        name = f"_t{len(self.tensors)}_{hint}"
        self.tensors[name] = t.detach().clone()
        return f"self.{name}"

    def function(self, fn: Callable, hint: str | None = None) -> str:
        for name, known in self.functions.items():
            if known is fn:
                return name
        name = f"_fn{len(self.functions)}_{hint or getattr(fn, '__name__', 'function')}"
        self.functions[name] = fn
        return name

    def input(self, name: str) -> str:
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


class ModuleSource:
    """The source of an exportable class for the traced `methods` of `bended`, with its bends."""

    def __init__(self, bended: BendedModule, methods: Sequence[str] | None = None, live_tensors: bool = False) -> None:
        methods = list(bended.traced_methods if methods is None else methods)
        if not methods:
            raise ExportError("nothing to export: trace a method first (bended.trace(...))")
        self.bended = bended
        self.ctx = ScriptContext(live_tensors)
        self.constants: dict[str, torch.Tensor] = {}
        self.globals: dict[str, Any] = {"torch": torch, "typing": typing, "Optional": typing.Optional,
                                        "List": list, "Tuple": tuple}
        self.weights: list[tuple[str, torch.Tensor]] = []  # (weight name, original value)
        self.paths: set[str] = set()  # what the generated code reads from the model: modules and tensors
        chunks = [self._update_weights()]
        for fn in methods:
            record = bended._records.get(fn)
            if not isinstance(record, TracedMethod):
                raise ExportError(f"method {fn!r} is not traced as a graph (traced: {bended.traced_methods}); "
                                  "only traced methods can be exported")
            chunks.append(self._method(fn, record))
        chunks += [self._accessors(p) for p in self.ctx.parameters.values()]
        chunks.append(self._metadata())
        self.methods = methods
        self.source = "\n".join(chunks)

    # --- pieces of the class ---------------------------------------------------------------------
    def _update_weights(self) -> str:
        """``_update_weights`` writes the bent weights into the model copy; ``_bent_weights`` returns them."""
        lines, values = [], []
        plan: dict[str, list] = {}
        for bend in self.bended._bends:
            for name in bend.weights:
                plan.setdefault(name, []).extend(_steps(bend.callback, bend.states[name]))
        for i, (name, steps) in enumerate(plan.items()):
            self.weights.append((name, self.bended._weights.tensor(name).detach().clone()))
            self.paths.add(name)
            lines.append(f"x = self._w{i}")
            lines += _bend_lines(steps, self.ctx, name)
            lines.append(f"w{i} = x")
            values.append(f"{name!r}: w{i}")
        writes = [f"{attribute_path('self.m', name)}.copy_(w{i})" for i, (name, _) in enumerate(plan.items())]
        update = ["with torch.no_grad():", *("    " + line for line in lines + writes)] if lines else ["pass"]
        bent = lines + ["return {" + ", ".join(values) + "}"]
        return ("def _update_weights(self) -> None:\n" + textwrap.indent("\n".join(update), "    ") + "\n\n"
                "@torch.jit.ignore\ndef _bent_weights(self) -> typing.Dict[str, torch.Tensor]:\n"
                + textwrap.indent("\n".join(bent), "    ") + "\n")

    def _method(self, fn: str, record: TracedMethod) -> str:
        bends = self.bended._activation_bends(fn)
        runtime = tuple(dict.fromkeys(k for bend in bends.values() for k in bend.inputs))
        graph, inputs, _ = bent_copy(record.graph, record.constants, bends, runtime)
        bend_methods = []
        for node in list(graph.nodes):
            if node.op == "call_function" and node.target is check_decision:
                graph.erase_node(node)  # exported programs keep the traced path without re-checking it
            elif node.op == "get_attr" and node.target.startswith("c."):
                name = f"_c_{fn}_{node.target[2:]}"
                self.constants[name] = record.constants[node.target[2:]]
                node.target = name
            elif node.op in ("call_module", "get_attr") and node.target.startswith("m."):
                self.paths.add(node.target[2:])
            elif node.op == "call_module" and node.target.startswith("b."):
                activation = node.target[2:]
                node.target = f"_bend_{fn}_{activation}"
                bend_methods.append(self._bend_method(node.target, f"{fn}:{activation}", bends[activation]))
        for placeholder in inputs.values():
            placeholder.type = typing.Optional[torch.Tensor]  # noqa: UP045 (TorchScript reads it)
        code = graph.python_code(root_module="self")
        for name, value in code.globals.items():
            if self.globals.setdefault(name, value) is not value:
                raise ExportError(f"two different objects are named {name!r} in the generated code")
        src = code.src.strip("\n")
        src = re.sub(r"def forward\((.*)\)( -> .*)?:", lambda m: f"def {fn}({m.group(1)}):", src, count=1)
        src = re.sub(r"\b(-?)inf\b", lambda m: f'float("{m.group(1)}inf")', src)
        src = re.sub(r"\bnan\b", 'float("nan")', src)
        decorator = "" if fn == "forward" else "@torch.jit.export\n"
        return "\n".join(bend_methods) + "\n" + decorator + textwrap.dedent(src) + "\n"

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
            checks += (f"    if value < {p.type(low)!r}:\n        raise ValueError(\"{p.name}: value below its range "
                       f"[{low}, {high}]\")\n")
        if high is not None:
            checks += (f"    if value > {p.type(high)!r}:\n        raise ValueError(\"{p.name}: value above its range "
                       f"[{low}, {high}]\")\n")
        return (f"@torch.jit.export\ndef get_{p.name}(self) -> {kind}:\n    return self.{p.name}[0]\n\n"
                f"@torch.jit.export\ndef set_{p.name}(self, value: {kind}) -> int:\n{checks}"
                f"    self.{p.name} = (value,)\n    self._update_weights()\n    return 0\n")

    def _metadata(self) -> str:
        """``bending_parameters()``: one dict of strings per parameter (name, type, min, max, value)."""
        entries = []
        for p in self.ctx.parameters.values():
            low, high = (("" if v is None else repr(p.type(v))) for v in p.range)
            entries.append(f'{{"name": "{p.name}", "type": "{p.type.__name__}", "min": "{low}", "max": "{high}", '
                           f'"value": str(self.{p.name}[0])}}')
        body = "[" + ", ".join(entries) + "]"
        return ("@torch.jit.export\ndef bending_parameters(self) -> typing.List[typing.Dict[str, str]]:\n"
                f"    out: typing.List[typing.Dict[str, str]] = {body}\n    return out\n")

    # --- the class and an instance -----------------------------------------------------------------
    def instantiate(self, base: type = torch.nn.Module) -> torch.nn.Module:
        """An instance of the generated class (subclassing `base`), holding a copy of the model."""
        reserved = set(dir(base)) | {"m"}
        for name in self.ctx.parameters:
            if name in reserved or name.startswith("_"):
                raise ExportError(f"a bending parameter named {name!r} would clash with the exported module; "
                                  "rename it")
        filename = f"<torchbend export #{next(_counter)}>"
        class_source = "class BendedExport(BASE):\n" + textwrap.indent(self.source, "    ")
        linecache.cache[filename] = (len(class_source), None, class_source.splitlines(True), filename)
        namespace = {**self.globals, **self.ctx.functions, "BASE": base, "__name__": "torchbend_export"}
        exec(compile(class_source, filename, "exec"), namespace)
        cls = namespace["BendedExport"]
        module = cls.__new__(cls)
        base.__init__(module)
        try:
            model = copy.deepcopy(self.bended.module)
        except Exception as error:
            raise ExportError(f"the model cannot be copied for export: {error}") from error
        module.m = skeleton(model, self.paths)
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

