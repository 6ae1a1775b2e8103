"""`Lambda`: bend with any function of the tensor.

>>> bended.bend(tb.Lambda(lambda w: torch.cos(16 * torch.pi * w)), "decoder.net.convt0.weight")
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .callback import BendingCallback


class Lambda(BendingCallback):
    """Applies `fn(x)`. `fn` receives a copy, so a function that works in place is safe."""

    controls = ()

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        if not callable(fn):
            raise TypeError(f"Lambda takes a function of a tensor, got {type(fn).__name__}")
        self.fn = fn

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        out = self.fn(x.clone())
        if not isinstance(out, torch.Tensor):
            name = getattr(self.fn, "__name__", repr(self.fn))
            raise TypeError(f"Lambda({name}) returned {type(out).__name__}, expected a tensor")
        return out

    def script(self, x: str, state: Any, ctx: Any) -> str:
        try:
            scripted = torch.jit.script(self.fn)
        except Exception as error:
            name = getattr(self.fn, "__name__", repr(self.fn))
            raise NotImplementedError(
                f"Lambda({name}) cannot be exported: its function does not compile to "
                f"TorchScript ({type(error).__name__}: {str(error).splitlines()[0]})"
            ) from None
        return f"{ctx.function(scripted, 'lambda')}({x})"

    def extra_repr(self) -> str:
        return getattr(self.fn, "__name__", repr(self.fn))
