"""Value bends: `Invert`, `BinaryThreshold`, `Ablate`, `Clamp` and `Quantize`.

    >>> bended.bend(tb.Invert(), "decoder_net_convt1", fn="decode")          # about each map's own range
    >>> bended.bend(tb.Quantize(tb.BendingParameter("levels", 4)), "decoder_net_convt1", fn="decode")

"Each map" is the last two axes of a tensor of rank >= 4 and the last axis of a lower rank.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from .callback import BendingCallback
from .checks import check_number, keep_checked
from .parameter import LiveValue

Scalar = float | int | LiveValue


def map_range(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each map's min and max, shaped to broadcast against `x`. TorchScript-compatible."""
    dims = [-2, -1] if x.dim() >= 4 else [-1]
    return x.amin(dim=dims, keepdim=True), x.amax(dim=dims, keepdim=True)


def invert_maps(x: torch.Tensor) -> torch.Tensor:
    """Each map mirrored about the middle of its own range: ``min + max - x``. TorchScript-compatible."""
    lo, hi = map_range(x)
    return lo + hi - x


def quantize_maps(x: torch.Tensor, levels: int) -> torch.Tensor:
    """Each map rounded to `levels` evenly spaced values across its own range. TorchScript-compatible."""
    lo, hi = map_range(x)
    span = (hi - lo).clamp_min(1e-12)
    steps = float(levels - 1)
    return torch.round((x - lo) / span * steps) / steps * span + lo


class Invert(BendingCallback):
    """Mirrors values about the middle of a range: each map's own min-max, or ``[lo, hi]`` when given."""

    controls: ClassVar[tuple[str, ...]] = ("lo", "hi")

    def __init__(self, lo: Scalar | None = None, hi: Scalar | None = None) -> None:
        super().__init__()
        if (lo is None) != (hi is None):
            raise ValueError("Invert: give both lo and hi (a range to invert about), or neither (each map's own range)")
        self.lo = lo if lo is None else check_number(self, "lo", lo)
        self.hi = hi if hi is None else check_number(self, "hi", hi)

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        if self.lo is None:
            return invert_maps(x)
        assert self.hi is not None  # lo and hi are given together
        return (float(self.lo) + float(self.hi)) - x

    def script(self, x: str, state: Any, ctx: Any) -> str:
        if self.lo is None:
            return f"{ctx.function(invert_maps)}({x})"
        return f"({ctx.float(self.lo)} + {ctx.float(self.hi)}) - {x}"


class BinaryThreshold(BendingCallback):
    """1 where the value is above `t`, 0 elsewhere."""

    controls: ClassVar[tuple[str, ...]] = ("t",)

    def __init__(self, t: Scalar = 0.0) -> None:
        super().__init__()
        self.t = check_number(self, "t", t)

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return (x > float(self.t)).to(x.dtype)

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"({x} > {ctx.float(self.t)}).to({x}.dtype)"


class Ablate(BendingCallback):
    """Zeroes the tensor (with `tb.Select`, only the chosen features)."""

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return torch.zeros_like(x)

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"torch.zeros_like({x})"


class Clamp(BendingCallback):
    """Limits values to ``[lo, hi]``."""

    controls: ClassVar[tuple[str, ...]] = ("lo", "hi")

    def __init__(self, lo: Scalar = -1.0, hi: Scalar = 1.0) -> None:
        super().__init__()
        self.lo = check_number(self, "lo", lo)
        self.hi = check_number(self, "hi", hi)
        keep_checked(self, self._check_order, lo, hi)

    def _check_order(self) -> None:
        if float(self.lo) > float(self.hi):
            raise ValueError(f"Clamp: lo must be <= hi, got lo={float(self.lo):g}, hi={float(self.hi):g}")

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return x.clamp(float(self.lo), float(self.hi))

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{x}.clamp({ctx.float(self.lo)}, {ctx.float(self.hi)})"


class Quantize(BendingCallback):
    """Rounds each map to `levels` evenly spaced values across its own min-max range (levels >= 2)."""

    controls: ClassVar[tuple[str, ...]] = ("levels",)

    def __init__(self, levels: int | LiveValue = 4) -> None:
        super().__init__()
        self.levels = check_number(self, "levels", levels, low=2, integer=True)

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return quantize_maps(x, int(self.levels))

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{ctx.function(quantize_maps)}({x}, int({ctx.float(self.levels)}))"
