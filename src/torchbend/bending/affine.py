"""Affine callbacks: `Scale`, `Bias` and `Affine`, on weights and activations alike.

Each argument may be a `tb.Trainable` (a learned gain or offset, per channel when shaped).

    >>> bended.bend(tb.Scale(10), "decoder.net.convt1.weight")
    >>> bended.bend(tb.Bias(tb.BendingParameter("offset", 0.1)), "decoder_net_convt2", fn="decode")
"""

from __future__ import annotations

from typing import Any

import torch

from .callback import BendingCallback
from .checks import check_number
from .parameter import LiveValue
from .trainable import Trainable, amount, script_amount

Scalar = float | int | LiveValue | Trainable


class Scale(BendingCallback):
    """Multiplies by `scale`: ``x * scale``."""

    controls = ("scale",)

    def __init__(self, scale: Scalar = 1.0) -> None:
        super().__init__()
        self.scale = check_number(self, "scale", scale, trainable=True)

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return x * amount(self.scale, x, self, "scale")

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{x} * {script_amount(self.scale, ctx, 'scale')}"


class Bias(BendingCallback):
    """Adds `bias`: ``x + bias``."""

    controls = ("bias",)

    def __init__(self, bias: Scalar = 0.0) -> None:
        super().__init__()
        self.bias = check_number(self, "bias", bias, trainable=True)

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return x + amount(self.bias, x, self, "bias")

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{x} + {script_amount(self.bias, ctx, 'bias')}"


class Affine(BendingCallback):
    """Scales then shifts: ``x * scale + bias``. Arguments by name only: ``tb.Affine(scale=2, bias=1)``."""

    controls = ("scale", "bias")

    def __init__(self, *positional: Any, scale: Scalar = 1.0, bias: Scalar = 0.0) -> None:
        if positional:
            raise TypeError("Affine takes its arguments by name, e.g. tb.Affine(scale=2.0, bias=0.5): positional "
                            "order differs between torchbend versions (the reference's is (bias, scale))")
        super().__init__()
        self.scale = check_number(self, "scale", scale, trainable=True)
        self.bias = check_number(self, "bias", bias, trainable=True)

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return x * amount(self.scale, x, self, "scale") + amount(self.bias, x, self, "bias")

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{x} * {script_amount(self.scale, ctx, 'scale')} + {script_amount(self.bias, ctx, 'bias')}"
