"""TorchScript and nn~ export of a bended module, with its bending parameters still live.

>>> b = bended.bend(tb.Mask(tb.BendingParameter("keep", 0.3, range=(0, 1))), "decoder.net.convt1.weight")
>>> scripted = bended.script()                       # every traced method, bent
>>> scripted.set_keep(0.5)                           # range-checked; weights recomputed once
0
>>> torch.jit.save(scripted, "bent.ts")
>>> bended.export_nntilde("bent-nn.ts", methods={"decode": dict(in_channels=64, in_ratio=1,
...                                                             out_channels=784, out_ratio=1)})  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import ExportError
from .codegen import ModuleSource

if TYPE_CHECKING:
    from ..core.engine import Engine


def _compile(module: torch.nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        try:
            return torch.jit.script(module)
        except Exception as error:
            lines = [line for line in str(error).splitlines() if line.strip()]
            raise ExportError("TorchScript could not compile the bended module: " + " | ".join(lines[:6])) from error


def script(engine: Engine, methods: Sequence[str] | None = None) -> torch.jit.ScriptModule:
    """A `torch.jit.ScriptModule` with the traced `methods` (default: all) of `bended`, bent."""
    return _compile(ModuleSource(engine, methods).instantiate(torch.nn.Module))


def export_nntilde(engine: Engine, path: str | Path, methods: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write a TorchScript file that nn~ loads: `methods` maps each method to its nn~ metadata.

    Each value holds ``in_channels, in_ratio, out_channels, out_ratio`` and optionally
    ``input_labels, output_labels, test_method``; every bending parameter becomes an nn~
    attribute. Needs the ``nn-tilde==1.5.6`` package.
    """
    try:
        import nn_tilde
    except ImportError:
        raise ExportError(
            "export_nntilde needs the nn-tilde package: pip install nn-tilde==1.5.6 "
            "(with torch constrained, e.g. pip install -c constraints.txt nn-tilde==1.5.6)"
        ) from None
    if not methods:
        raise ExportError(
            "export_nntilde needs methods={name: dict(in_channels=..., in_ratio=..., out_channels=..., out_ratio=...)}"
        )
    source = ModuleSource(engine, list(methods))
    module: Any = source.instantiate(nn_tilde.Module)  # an nn_tilde.Module (untyped)
    required = {"in_channels", "in_ratio", "out_channels", "out_ratio"}
    for name, spec in methods.items():
        missing = required - set(spec)
        if missing:
            raise ExportError(f"methods[{name!r}] lacks {sorted(missing)}")
        try:
            module.register_method(name, **spec)
        except Exception as error:  # nn~ runs the method at batch 1 and 4 on 8192 samples
            raise ExportError(
                f"nn~ could not register {name!r} with {dict(spec)}: {type(error).__name__}: {error}. "
                "Bends drawn for the traced length (a Mask or Normal without dim) cannot run on "
                "other lengths: bend with dim=1 to draw per channel"
            ) from error
    for name, parameter in source.ctx.parameters.items():
        module.register_attribute(name, parameter.value)
    module.eval()
    scripted = _compile(module)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    scripted.save(str(path))
    return path
