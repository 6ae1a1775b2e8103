"""torch.export of one bended method, with the bending parameters as inputs (a .pt2 file).

    >>> b = bended.bend(tb.Scale(tb.BendingParameter("keep", 1.0)), "decoder.net.convt1.weight")
    >>> path = bended.export("bent.pt2", "decode", z)           # inputs: z, then one 0-d tensor per parameter
    >>> program = torch.export.load("bent.pt2").module()
    >>> program(z, torch.tensor(0.5)).shape                     # the parameter "keep" at 0.5
    torch.Size([16, 1, 28, 28])

The program is specialised to the example inputs' shapes. Bends whose parameters must
become Python numbers inside the method (a `ThresholdActivation` threshold, say) cannot
be exported this way: use `script()` for those.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import ExportError
from .codegen import ModuleSource

if TYPE_CHECKING:
    from ..engine import Engine


class _WithLiveParameters(torch.nn.Module):
    """Runs one generated method with parameter values and bent weights computed from the inputs."""

    def __init__(self, inner: torch.nn.Module, method: str, n_inputs: int, parameters: list[str]) -> None:
        super().__init__()
        self.inner = inner
        self.method = method
        self.n_inputs = n_inputs
        self.parameters_in_order = parameters

    def forward(self, *args: torch.Tensor) -> Any:
        inputs, values = args[: self.n_inputs], args[self.n_inputs:]
        for name, value in zip(self.parameters_in_order, values):
            setattr(self.inner, name, (value,))
        weights = self.inner._bent_weights()
        with torch.nn.utils.stateless._reparametrize_module(self.inner.m, weights):
            return getattr(self.inner, self.method)(*inputs)


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
    source = ModuleSource(engine, [fn], live_tensors=True)
    inner = source.instantiate(torch.nn.Module)
    parameters = list(source.ctx.parameters)
    inputs = args or example_inputs(engine, fn)
    module = _WithLiveParameters(inner, fn, len(inputs), parameters)
    values = tuple(torch.tensor(p.value) for p in source.ctx.parameters.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.export.export(module, (*inputs, *values), strict=False)
        except Exception as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ExportError(f"torch.export could not export {fn}: {type(error).__name__}: {first}. "
                              "script() supports more bends") from error
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.export.save(program, str(path))
    return path
