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
            raise TypeError(
                "Affine takes its arguments by name, e.g. tb.Affine(scale=2.0, bias=0.5): positional "
                "order differs between torchbend versions (the reference's is (bias, scale))"
            )
        super().__init__()
        self.scale = check_number(self, "scale", scale, trainable=True)
        self.bias = check_number(self, "bias", bias, trainable=True)

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return x * amount(self.scale, x, self, "scale") + amount(self.bias, x, self, "bias")

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{x} * {script_amount(self.scale, ctx, 'scale')} + {script_amount(self.bias, ctx, 'bias')}"


class LowRank(BendingCallback):
    """Adds a low-rank linear map of the features along `dim`: ``x + (x @ u) @ v.T``, with `u` and `v` of shape
    ``(D, r)`` (learned `tb.Trainable` values; `v` starting at zero starts the bend as the identity).

        >>> u = tb.Trainable(torch.randn(16, 2) / 4)
        >>> v = tb.Trainable(0.0, shape=(16, 2))
        >>> bended.bend(tb.LowRank(u, v, dim=1), "decode:decoder_net_relu2")     # rotates 16 channels, rank 2
    """

    controls = ("u", "v")

    def __init__(self, u: Trainable, v: Trainable, dim: int = -1) -> None:
        super().__init__()
        for name, value in (("u", u), ("v", v)):
            if not isinstance(value, Trainable) or value.parameter.dim() != 2:
                raise TypeError(f"LowRank: {name} must be a tb.Trainable of shape (features, rank), got {value!r}")
        if u.shape != v.shape:
            raise ValueError(f"LowRank: u and v must have one shape, got {tuple(u.shape)} and {tuple(v.shape)}")
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError(f"LowRank: dim must be an int, got {dim!r}")
        self.u, self.v, self.dim = u, v, dim

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        size = x.shape[self.dim] if -x.dim() <= self.dim < x.dim() else "no"
        if size != self.u.shape[0]:
            raise ValueError(
                f"LowRank: u and v are for {self.u.shape[0]} features, but axis {self.dim} of a tensor "
                f"of shape {tuple(x.shape)} has {size} entries; give the axis of the features as dim"
            )
        u, v = self.u.read().to(x), self.v.read().to(x)
        return x + torch.matmul(torch.matmul(x.movedim(self.dim, -1), u), v.t()).movedim(-1, self.dim)

    def script(self, x: str, state: Any, ctx: Any) -> str:
        u, v = script_amount(self.u, ctx, "u"), script_amount(self.v, ctx, "v")
        return f"{x} + torch.matmul(torch.matmul({x}.movedim({self.dim}, -1), {u}), {v}.t()).movedim(-1, {self.dim})"
