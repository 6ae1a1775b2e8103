"""Affine callbacks: `Scale`, `Bias` and `Affine`, on weights and activations alike.

    >>> bended.bend(tb.Scale(10), "decoder.net.convt1.weight")
    >>> bended.bend(tb.Bias(tb.BendingParameter("offset", 0.1)), "decoder_net_convt2", fn="decode")
"""

from __future__ import annotations

from typing import Any

import torch

from .callback import BendingCallback
from .checks import check_number
from .parameter import LiveValue

Scalar = float | int | LiveValue


class Scale(BendingCallback):
    """Multiplies by `scale`: ``x * scale``."""

    controls = ("scale",)

    def __init__(self, scale: Scalar = 1.0) -> None:
        super().__init__()
        self.scale = check_number(self, "scale", scale)

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return x * float(self.scale)

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{x} * {ctx.float(self.scale)}"


class Bias(BendingCallback):
    """Adds `bias`: ``x + bias``."""

    controls = ("bias",)

    def __init__(self, bias: Scalar = 0.0) -> None:
        super().__init__()
        self.bias = check_number(self, "bias", bias)

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return x + float(self.bias)

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{x} + {ctx.float(self.bias)}"


class Affine(BendingCallback):
    """Scales then shifts: ``x * scale + bias``. Arguments by name only: ``tb.Affine(scale=2, bias=1)``."""

    controls = ("scale", "bias")

    def __init__(self, *positional: Any, scale: Scalar = 1.0, bias: Scalar = 0.0) -> None:
        if positional:
            raise TypeError("Affine takes its arguments by name, e.g. tb.Affine(scale=2.0, bias=0.5): positional "
                            "order differs between torchbend versions (the reference's is (bias, scale))")
        super().__init__()
        self.scale = check_number(self, "scale", scale)
        self.bias = check_number(self, "bias", bias)

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return x * float(self.scale) + float(self.bias)

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{x} * {ctx.float(self.scale)} + {ctx.float(self.bias)}"
