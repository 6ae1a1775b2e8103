"""torch.export of one bended method, with the bending parameters as keyword inputs (a .pt2 file).

    >>> bended.export("bent.pt2", "decode", z)                 # inputs: z, then one 0-d tensor per parameter
    >>> program = torch.export.load("bent.pt2").module()
    >>> program(z, keep=torch.tensor(0.5))                     # the parameter "keep" at 0.5, by its name
    >>> program(z[:3], keep=torch.tensor(0.5))                 # any batch size

The first axis of every tensor input is a dynamic batch dimension (of those whose first axis is as long as
the first input's; the others, such as Flux's position ids, keep their shapes); the other axes are
specialised to the example inputs' shapes. Every parameter is a keyword input and must be
given at each call (a .pt2 program has no default values); ``program.meta`` is not kept, so
the values at export are listed by `parameter_defaults(path)`. Bends whose parameters must
become Python numbers inside the method (a `ThresholdActivation` threshold, say) cannot
be exported this way: use `script()` for those.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import ExportError
from ..naming import is_python_name
from .codegen import ModuleSource, check_parameter_names

if TYPE_CHECKING:
    from ..core.engine import Engine


class _WithLiveParameters(torch.nn.Module):
    """Runs one generated method with parameter values and bent weights computed from the inputs."""

    def __init__(self, inner: torch.nn.Module, method: str, n_inputs: int, parameters: list[str]) -> None:
        super().__init__()
        self.inner: Any = inner  # a generated module: its methods and attributes are not known statically
        self.method = method
        self.n_inputs = n_inputs
        self.parameters_in_order = parameters

    def run(self, inputs: tuple[torch.Tensor, ...], values: dict[str, torch.Tensor]) -> Any:
        for name in self.parameters_in_order:
            setattr(self.inner, name, (values[name],))
        weights = self.inner._bent_weights()
        with torch.nn.utils.stateless._reparametrize_module(self.inner.m, weights):
            return getattr(self.inner, self.method)(*inputs)


def _with_signature(module: _WithLiveParameters, inputs: list[str]) -> torch.nn.Module:
    """`module` with ``forward(self, <inputs>, *, <parameters>)``: torch.export names inputs after the signature."""
    params = module.parameters_in_order
    values = ", ".join(f"{p!r}: {p}" for p in params)
    source = (
        f"def forward(self, {', '.join(inputs)}{', *, ' if params else ''}{', '.join(params)}):\n"
        f"    return self.run(({''.join(i + ', ' for i in inputs)}), {{{values}}})"
    )
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    cls = type("BentProgram", (_WithLiveParameters,), {"forward": namespace["forward"]})
    module.__class__ = cls
    return module


def _input_names(engine: Engine, fn: str, count: int, reserved: set[str]) -> list[str]:
    names = list(engine.record(fn).input_names)[:count]
    ok = len(names) == count and all(is_python_name(n) and n not in reserved and n != "self" for n in names)
    return names if ok and len(set(names)) == count else [f"input_{i}" for i in range(count)]


def example_inputs(engine: Engine, fn: str) -> tuple[torch.Tensor, ...]:
    """Random inputs shaped like the traced ones (for a method traced with tensor arguments only)."""
    record = engine.record(fn)
    inputs = []
    for name in record.input_names:
        info = record.activations.get(name) or next(a for a in record.activations.values() if a.target == name)
        if info.shape is None:
            raise ExportError(f"input {name!r} of {fn} is not a tensor: pass example inputs to export()")
        if info.dtype is not None and info.dtype.is_floating_point:
            inputs.append(torch.randn(info.shape, dtype=info.dtype))
        else:
            inputs.append(torch.zeros(info.shape, dtype=info.dtype))
    return tuple(inputs)


def export(engine: Engine, path: str | Path, fn: str = "forward", *args: torch.Tensor) -> Path:
    """Export `fn` with torch.export to `path`; inputs are `args` then one 0-d tensor per bending parameter."""
    source = ModuleSource(engine, [fn], live_tensors=True, distributions_as_dicts=True)
    inner = source.instantiate(torch.nn.Module)
    parameters = list(source.ctx.parameters)
    check_parameter_names(parameters, {"self"}, f"the exported {fn}(self, ...)")
    inputs = args or example_inputs(engine, fn)
    names = _input_names(engine, fn, len(inputs), set(parameters))
    module = _with_signature(_WithLiveParameters(inner, fn, len(inputs), parameters), names)
    values = {name: torch.tensor(p.value) for name, p in source.ctx.parameters.items()}
    batch = torch.export.Dim("batch", min=1)
    size = inputs[0].shape[0] if inputs and isinstance(inputs[0], torch.Tensor) and inputs[0].ndim else None
    dynamic_shapes = {
        name: {0: batch} if isinstance(t, torch.Tensor) and t.ndim > 0 and t.shape[0] == size else None
        for name, t in zip(names, inputs)
    }  # an input without the batch axis keeps its shape
    dynamic_shapes.update({name: None for name in values})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.export.export(
                module, tuple(inputs), kwargs=values, dynamic_shapes=dynamic_shapes, strict=False
            )
        except Exception as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ExportError(
                f"torch.export could not export {fn}: {type(error).__name__}: {first}. script() supports more bends"
            ) from error
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    defaults = {name: repr(float(p.value)) for name, p in source.ctx.parameters.items()}
    torch.export.save(program, str(path), extra_files={"bending_parameters.json": json.dumps(defaults)})
    return path


def parameter_defaults(path: str | Path) -> dict[str, torch.Tensor]:
    """The bending parameters' values at export, as keyword inputs: ``program(z, **parameter_defaults(path))``."""
    extra = {"bending_parameters.json": ""}
    torch.export.load(str(path), extra_files=extra)
    return {name: torch.tensor(float(v)) for name, v in json.loads(extra["bending_parameters.json"] or "{}").items()}
