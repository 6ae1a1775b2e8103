"""A bent copy of a TorchScript module, as a ScriptModule with live bending parameters.

    >>> scripted, parameters = bent_script(loaded, {"decoder.net.0.weight": [(tb.Scale(gain), None)]},
    ...                        {"decode": {"decoder.net.1:input.3": [(tb.Bias(0.1), None)]}})
    >>> scripted.set_gain(2.0)            # range-checked; the bent weights are recomputed once
    >>> torch.jit.save(scripted, "bent.ts")

The result is a copy of the whole loaded module (its methods, attributes and nn~ metadata
kept) in which the bent methods are inlined and rewritten: a bent weight is read from a
buffer (``_tb_bw<i>``) recomputed by the setters from the original (``_tb_w<i>``), and each
activation bend is the callbacks' ``script`` code, inserted right after its value. The weight
version mix in use (``bases``) is baked in. `compile_bend` makes the same code a TorchScript graph
for eager calls (`torchbend.torchscript.backend`), with live parameters as graph inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..bending.callback import BendingCallback
from ..bending.parameter import BendingParameter
from ..runtime.program import ActivationBend
from ..torchscript.graph import CompiledBend, named_values, private_copy
from ..torchscript.specialise import GIVEN, attribute_paths, specialise
from .codegen import ExportError, ScriptContext, _bend_lines, _steps, check_parameter_names

Steps = Sequence[tuple[BendingCallback, Any]]
_TYPES: dict[type, Any] = {float: torch._C.FloatType, int: torch._C.IntType, bool: torch._C.BoolType}
_NNTILDE_TYPES = {bool: 0, int: 1, float: 2}


def _flat(steps: Steps) -> list[tuple[BendingCallback, Any]]:
    return [pair for cb, state in steps for pair in _steps(cb, state)]


def _accessors(p: BendingParameter) -> str:
    kind = p.type.__name__
    low, high = p.range
    checks = ""
    if low is not None:
        checks += f'    if value < {p.type(low)!r}:\n        raise ValueError("{p.name}: below [{low}, {high}]")\n'
    if high is not None:
        checks += f'    if value > {p.type(high)!r}:\n        raise ValueError("{p.name}: above [{low}, {high}]")\n'
    return (
        f"def get_{p.name}(self) -> {kind}:\n    return self.{p.name}[0]\n\n"
        f"def set_{p.name}(self, value: {kind}) -> int:\n{checks}"
        f"    self.{p.name} = (value,)\n    self._tb_update_weights()\n    return 0\n"
    )


def _define(module: torch.jit.ScriptModule, source: str, ctx: ScriptContext) -> None:
    names = {"torch": torch, "ValueError": ValueError, **ctx.functions}
    try:
        module._c._define(module._concrete_type, source, lambda name: names.get(name))
    except Exception as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        raise ExportError("TorchScript could not compile the bends: " + " | ".join(lines[:6])) from error


def _call_method(graph: torch._C.Graph, method: str, value: torch._C.Value) -> None:
    """Insert ``self.<method>(value)`` right after `value`; every consumer reads its result."""
    node = graph.create("prim::CallMethod", [next(graph.inputs()), value], 1)
    node.s_("name", method)
    node.output().setType(value.type())
    if value.node().kind() == "prim::Param":
        node.insertBefore(next(iter(graph.nodes())))
    else:
        node.insertAfter(value.node())
    value.replaceAllUsesWith(node.output())
    node.replaceInputWith(node.output(), value)


def bent_script(
    module: torch.jit.ScriptModule,
    weights: Mapping[str, Steps],
    activations: Mapping[str, Mapping[str, Steps]],
    bases: Mapping[str, torch.Tensor] | None = None,
    specialised: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[torch.jit.ScriptModule, list[BendingParameter]]:
    """A bent copy of `module` and its bending parameters.

    `weights` maps weight names, and `activations` method -> value name, to (callback, state) steps;
    `bases` gives weights their values before the bends (a weight version), by name. `specialised` gives,
    by method, the non-tensor arguments its trace was specialised to (`ScriptMethod.specialised`): a method with
    activation bends is exported specialised the same way, and raises when called with other values.
    """
    out = private_copy(module)
    ctx = ScriptContext()
    tensors = dict(module.named_parameters()) | dict(module.named_buffers())
    bases = dict(bases or {})
    weights = {**weights, **{name: [] for name in bases if name not in weights}}
    update = []
    for i, (name, steps) in enumerate(weights.items()):
        if name not in tensors:
            raise ExportError(f"no weight {name!r} in the TorchScript module")
        source = bases.get(name, tensors[name])
        out._c._register_attribute(f"_tb_w{i}", torch._C.TensorType.get(), source.detach().clone())
        out._c._register_attribute(f"_tb_bw{i}", torch._C.TensorType.get(), tensors[name].detach().clone())
        update += [f"x = self._tb_w{i}", *_bend_lines(_flat(steps), ctx, name), f"self._tb_bw{i} = x"]
    body = "\n".join("        " + line for line in update) if update else "        pass"
    sources = [f"def _tb_update_weights(self) -> int:\n    with torch.no_grad():\n{body}\n    return 0\n"]
    bend_names: dict[str, dict[str, str]] = {}
    for fn, bends in activations.items():
        for name, steps in bends.items():
            ctx.inputs = []
            lines = _bend_lines(_flat(steps), ctx, f"{fn}:{name}")
            if ctx.inputs:
                raise ExportError(
                    f"the bend of {fn}:{name} takes run-time inputs {ctx.inputs}, which an exported "
                    "TorchScript file cannot be given; remove it before exporting"
                )
            method = f"_tb_bend{len(sources)}"
            bend_names.setdefault(fn, {})[name] = method
            sources.append(
                f"def {method}(self, x: torch.Tensor) -> torch.Tensor:\n"
                + "".join(f"    {line}\n" for line in lines)
                + "    return x\n"
            )
    check_parameter_names(
        ctx.parameters, {name for name in ctx.parameters if hasattr(out, name)}, "the TorchScript module"
    )
    for name, p in ctx.parameters.items():
        out._c._register_attribute(name, torch._C.TupleType([_TYPES[p.type].get()]), (p.value,))
        sources.append(_accessors(p))
    for name, tensor in ctx.tensors.items():
        out._c._register_attribute(name, torch._C.TensorType.get(), tensor)
    guards = {fn: values for fn, values in (specialised or {}).items() if values and activations.get(fn)}
    sources += [_guard(module, fn, values) for fn, values in guards.items()]
    _define(out, "\n".join(sources), ctx)
    _rewrite(out, weights, bend_names, guards)
    out._tb_update_weights()
    return out, list(ctx.parameters.values())


def _guard(module: torch.jit.ScriptModule, fn: str, values: Mapping[str, Any]) -> str:
    """The source of ``_tb_guard_<fn>``, raising when `fn` is called with other values than `values`."""
    types = {a.name: a.type for a in getattr(module, fn).schema.arguments}
    checks = []
    for name, value in values.items():
        if value is GIVEN:
            checks.append(f"{name} is None")
        elif value is None:
            checks.append(f"{name} is not None")
        elif isinstance(types[name], torch._C.OptionalType):
            checks.append(f"{name} is None or {name} != {value!r}")
        else:
            checks.append(f"{name} != {value!r}")
    given = ", ".join(f"{name}: {types[name].annotation_str}" for name in values)
    message = (
        f"{fn} was exported specialised to {', '.join(f'{k}={v!r}' for k, v in values.items())} (the values "
        "it was traced with); export it from a trace with the values you need"
    )
    return (
        f"def _tb_guard_{fn}(self, {given}) -> int:\n"
        + "".join(f"    if {check}:\n        raise ValueError({message!r})\n" for check in checks)
        + "    return 0\n"
    )


def _specialise(graph: torch._C.Graph, out: torch.jit.ScriptModule, fn: str, values: Mapping[str, Any]) -> None:
    """Specialise `fn`'s inlined graph as its trace was, guarded by ``self._tb_guard_<fn>(...)`` first."""
    names = [a.name for a in out._c._get_method(fn).schema.arguments]
    inputs = list(graph.inputs())
    specialise(graph, out, {names.index(name): value for name, value in values.items()})
    node = graph.create("prim::CallMethod", [inputs[0], *(inputs[names.index(name)] for name in values)], 1)
    node.s_("name", f"_tb_guard_{fn}")
    node.output().setType(torch._C.IntType.get())
    node.insertBefore(next(iter(graph.nodes())))


def _rewrite(
    out: torch.jit.ScriptModule,
    weights: Mapping[str, Steps],
    bends: Mapping[str, Mapping[str, str]],
    guards: Mapping[str, Mapping[str, Any]],
) -> None:
    """Inline and rewrite, in place, every method of `out` that reads a bent weight or has activation bends."""
    for fn in out._c._method_names():
        if fn.startswith("_tb_") or fn.startswith(("get_", "set_")):
            continue
        graph = out._c._get_method(fn).graph
        probe = graph.copy()
        torch._C._jit_pass_inline(probe)
        reads = attribute_paths(probe)
        if not bends.get(fn) and not any(name in reads for name in weights):
            continue
        torch._C._jit_pass_inline(graph)
        if fn in guards:
            _specialise(graph, out, fn, guards[fn])
        reads = attribute_paths(graph)
        for i, name in enumerate(weights):
            for read in reads.get(name, []):
                node = graph.create("prim::GetAttr", [next(graph.inputs())], 1)
                node.s_("name", f"_tb_bw{i}")
                node.output().setType(read.type())
                node.insertAfter(read.node())
                read.replaceAllUsesWith(node.output())
        values, nested = named_values(graph)
        for name, method in bends.get(fn, {}).items():
            if name not in values:
                where = "inside a control-flow block" if name in nested else "not a value of this method"
                raise ExportError(f"cannot export the bend of {fn}:{name}: it is {where}")
            _call_method(graph, method, values[name])
        torch._C._jit_pass_inline(graph)
        torch._C._jit_pass_dce(graph)
    missing = set(bends) - set(out._c._method_names())
    if missing:
        raise ExportError(f"the TorchScript module has no methods {sorted(missing)}")


def register_nntilde_attributes(out: torch.jit.ScriptModule, parameters: Sequence[BendingParameter]) -> None:
    """Make the bending parameters nn~ attributes of an nn~ module (``_attributes``, ``<name>_params``)."""
    if not hasattr(out, "get_attributes") or not hasattr(out, "_attributes"):
        raise ExportError(
            "export_nntilde needs an nn~ module (one made with nn_tilde.Module, with get_methods and "
            "get_attributes); save script() with torch.jit.save for other modules"
        )
    names = list(out._attributes)
    for p in parameters:
        hashes = torch.tensor([float(_NNTILDE_TYPES[p.type])])
        out._c._register_attribute(f"{p.name}_params", torch._C.TensorType.get(), hashes)
        if p.name not in names:
            names.append(p.name)
    out._attributes = names


def save(module: torch.jit.ScriptModule, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.save(module, str(path))
    return path


class _EagerContext(ScriptContext):
    """A `ScriptContext` for eager calls: parameters and tensors are arguments (``p0``, ``t0``) of the bend."""

    def __init__(self) -> None:
        super().__init__()
        self.order: list[BendingParameter] = []
        self.given: list[torch.Tensor] = []

    def value(self, v: Any) -> str:
        if isinstance(v, BendingParameter):
            if self.parameters.setdefault(v.name, v) is not v:
                raise ExportError(f"two different bending parameters are named {v.name!r}")
            if not any(p is v for p in self.order):
                self.order.append(v)
            return f"p{next(i for i, p in enumerate(self.order) if p is v)}"
        return super().value(v)

    def tensor(self, t: torch.Tensor, hint: str) -> str:
        self.given.append(t.detach())
        return f"t{len(self.given) - 1}"


def compile_bend(bend: ActivationBend, target: str) -> CompiledBend | None:
    """The callbacks of `bend` as one TorchScript graph ``(x, *parameters, *tensors) -> x``, from their ``script``
    code; None (run it in Python) when one has no TorchScript form, takes run-time inputs or has side effects.

        >>> compiled = compile_bend(ActivationBend([(tb.Scale(tb.BendingParameter("gain", 2.0)), None)]), "x")
        >>> [p.name for p in compiled.parameters], compiled.tensors
        (['gain'], [])
    """
    steps = [(cb, state) for cb, state, names in bend.steps]
    if any(names for _, _, names in bend.steps) or any(
        getattr(m, "side_effects", False) for cb, _ in steps for m in cb.modules()
    ):
        return None
    ctx = _EagerContext()
    try:
        lines = _bend_lines(_flat(steps), ctx, target)
    except Exception:  # no TorchScript form (NotImplementedError, ExportError): a Python call
        return None
    if ctx.inputs:
        return None
    arguments = "".join(f", p{i}: {p.type.__name__}" for i, p in enumerate(ctx.order))
    arguments += "".join(f", t{i}: torch.Tensor" for i in range(len(ctx.given)))
    source = (
        f"def bend(x: torch.Tensor{arguments}) -> torch.Tensor:\n"
        + "".join(f"    {line}\n" for line in lines)
        + "    return x\n"
    )
    names: dict[str, Any] = {"torch": torch, **ctx.functions}

    def resolve(name: str) -> Any:
        return names.get(name)

    unit = torch._C.CompilationUnit()
    try:
        unit.define(source, resolve)
    except Exception:  # a script form TorchScript cannot compile here: a Python call
        return None
    graph = unit.find_function("bend").graph.copy()
    torch._C._jit_pass_inline(graph)
    torch._C._jit_pass_dce(graph)
    return CompiledBend(graph, ctx.order, ctx.given)
