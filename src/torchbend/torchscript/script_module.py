"""`BentScriptModule`, deprecated: `tb.BendedModule(torch.jit.load("rave.ts"))` (or `tb.load`) bends TorchScript files.

    >>> bent = tb.BentScriptModule(torch.jit.load("rave.ts"))      # DeprecationWarning; a BendedModule
    >>> bent.bend_weight("decoder.net.0.weight", tb.Scale(2.0))     # = bent.bend(tb.Scale(2.0), "decoder.net.0.weight")
    >>> bent.bend_activation("decode", "decoder.net.1:input.3", tb.Bias(0.1))   # = bent.bend(cb, "decode:...")

It is a `BendedModule` (see `torchbend.torchscript.backend`), with the former class's ways of calling kept
where they do not clash with `BendedModule`'s: `bend_weight`, `bend_activation`, a list of names
first in `get_activations`, and the method first in `from_activations(fn, **values)`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, cast

import torch

from ..bended import BendedModule
from ..bending.callback import BendingCallback
from ..core.bends import Bend


class BentScriptModule(BendedModule):
    """Deprecated alias of `BendedModule` for TorchScript modules."""

    def __new__(cls, module: Any = None, *args: Any, **kwargs: Any) -> BentScriptModule:
        return object.__new__(cls)

    def __init__(self, scripted: torch.jit.ScriptModule, buffers: Sequence[str] = ()) -> None:
        warnings.warn(
            "tb.BentScriptModule is deprecated: tb.BendedModule(scripted) and tb.load('model.ts') give a "
            "BendedModule over the TorchScript module",
            DeprecationWarning,
            stacklevel=2,
        )
        if not isinstance(scripted, torch.jit.ScriptModule):
            raise TypeError(
                f"BentScriptModule takes a TorchScript module (torch.jit.load / torch.jit.script), "
                f"got {type(scripted).__name__}; use tb.BendedModule for a Python module"
            )
        super().__init__(scripted, buffers)

    def bend_weight(self, name: str, callback: BendingCallback) -> Bend:
        """Bend the weight `name`: ``bend(callback, name)``, weights only."""
        return cast(Bend, self.bend(callback, *self.resolve_parameters(name)))  # a callback: one Bend

    def bend_activation(self, fn: str, name: str, callback: BendingCallback) -> Bend:
        """Bend the value `name` of the traced method `fn`: ``bend(callback, f"{fn}:{name}")``."""
        return cast(Bend, self.bend(callback, f"{fn}:{name}"))  # a callback: one Bend

    def get_activations(
        self, *names: Any, fn: str = "forward", after_bends: bool = False, _filter_bended: bool = True, **inputs: Any
    ) -> dict[str, torch.Tensor]:
        if names and isinstance(names[0], (list, tuple)) and all(isinstance(n, str) for n in names[0]):
            names = (*names[0], *names[1:])
        return super().get_activations(*names, fn=fn, after_bends=after_bends, **inputs)

    def from_activations(self, *names: Any, fn: str = "forward", **values: Any) -> Any:
        if len(names) == 1 and isinstance(names[0], str) and self._engine.backend.has_method(names[0]):
            fn, names = names[0], ()  # the former from_activations(fn, **values)
        return super().from_activations(*names, fn=fn, **values)
