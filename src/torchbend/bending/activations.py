"""Activation-only callbacks: `ThresholdActivation` and `InterpolateActivation`.

>>> b = bended.bend(tb.ThresholdActivation(0.5, dim=-3), "decoder_net_convt1", fn="decode")
>>> b = bended.bend(tb.InterpolateActivation(), "decoder_net_convt1", fn="decode")
>>> w = torch.stack([torch.linspace(0, 1, 8), torch.linspace(1, 0, 8)], 1)   # (8 outputs, 2 inputs)
>>> bended.decode(z=z[:2], interp_weights=w).shape       # 8 images mixing the 2 at that layer
torch.Size([8, 1, 28, 28])
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch

from .callback import BendingCallback, check_dims, check_flag
from .checks import check_number
from .parameter import LiveValue


def threshold_channels(x: torch.Tensor, threshold: float, dim: int, invert: bool) -> torch.Tensor:
    """Keep, per batch item, the ``floor(threshold * C)`` channels along `dim` with the largest mean
    (smallest with `invert`) over the other non-batch axes; zero the rest. TorchScript-compatible."""
    if x.dim() < 2 or dim % x.dim() == 0:
        raise ValueError("ThresholdActivation needs a channel axis other than the batch axis")
    axis = dim % x.dim()
    channels = x.shape[axis]
    keep = int(math.floor(threshold * channels))
    if keep >= channels:
        return x
    others: list[int] = []
    for a in range(1, x.dim()):
        if a != axis:
            others.append(a)
    activity = x.mean(dim=others) if len(others) > 0 else x  # (B, C)
    mask = torch.zeros_like(activity)
    if keep > 0:
        top = activity.topk(keep, dim=1, largest=not invert).indices
        mask.scatter_(1, top, 1.0)
    shape = [x.shape[0]] + [1] * (x.dim() - 1)
    shape[axis] = channels
    return x * mask.view(shape)


class ThresholdActivation(BendingCallback):
    """Keeps, for each batch item on its own, the most active channels along `dim`; zeroes the others.

    A channel's activity is its mean over the non-batch axes other than `dim`; the
    ``floor(threshold * C)`` most active channels are kept (the least active with
    ``invert=True``). Works for (B, C, T), (B, C, H, W) and token-major (B, T, C) with ``dim=-1``.
    """

    weights = False
    controls = ("threshold", "invert")

    def __init__(self, threshold: float | LiveValue = 0.5, dim: int = -3, invert: bool | LiveValue = False) -> None:
        super().__init__()
        if not isinstance(check_dims(self, "dim", dim, allow_none=False), int):
            raise TypeError(f"ThresholdActivation takes one int channel dim, got {dim!r}")
        self.threshold = check_number(self, "threshold", threshold, low=0.0, high=1.0)
        self.dim = dim
        self.invert = check_flag(self, "invert", invert)

    def setup(self, target: Any) -> None:
        rank = len(target.shape)
        if rank < 2 or not -rank <= self.dim < rank or self.dim % rank == 0:
            raise ValueError(
                f"ThresholdActivation(dim={self.dim}) needs a channel axis other than the batch axis "
                f"inside the rank of {target.qualified}, shape {tuple(target.shape)}"
            )

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        if x.ndim < 2 or self.dim % x.ndim == 0:
            raise ValueError(
                f"ThresholdActivation(dim={self.dim}) needs a channel axis other than the batch axis; "
                f"got a tensor of shape {tuple(x.shape)}"
            )
        return threshold_channels(x, float(self.threshold), self.dim, bool(self.invert))

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return (
            f"{ctx.function(threshold_channels)}({x}, {ctx.float(self.threshold)}, {self.dim}, {ctx.bool(self.invert)})"
        )


def mix(x: torch.Tensor, weights: torch.Tensor, softmax: bool) -> torch.Tensor:
    """``out[n] = sum_b weights[n, b] * x[b]``; 1-D weights are one output row. TorchScript-compatible."""
    w = weights.to(device=x.device, dtype=x.dtype)
    if w.dim() == 1:
        w = w.unsqueeze(0)
    if w.dim() != 2 or w.shape[1] != x.shape[0]:
        raise ValueError("mixing weights must have shape (N, B) or (B,) for a batch of B items")
    if softmax:
        w = w.softmax(dim=1)
    return torch.tensordot(w, x, dims=([1], [0]))


def mix_if_given(x: torch.Tensor, weights: Optional[torch.Tensor], softmax: bool) -> torch.Tensor:  # noqa: UP045
    """`mix` when weights are given, else `x` unchanged. TorchScript-compatible."""
    if weights is None:
        return x
    return mix(x, weights, softmax)


def mix_batch(x: torch.Tensor, weights: Any, softmax: bool, what: str) -> torch.Tensor:
    """`mix` with an error naming the run-time input when the weights do not fit."""
    w = torch.as_tensor(weights)
    if w.ndim not in (1, 2) or w.shape[-1] != x.shape[0]:
        raise ValueError(
            f"{what} must have shape (N, {x.shape[0]}) or ({x.shape[0]},) to mix {x.shape[0]} items, "
            f"got {tuple(w.shape)}"
        )
    return mix(x, w, softmax)


class InterpolateActivation(BendingCallback):
    """Mixes the batch items of an activation by the run-time keyword `interp_weights`.

    With weights of shape (N, B) (or (B,)), output item n is ``sum_b w[n, b] * x[b]``, so the
    rest of the method runs on N mixtures of the B inputs. Without weights it is the identity.
    ``softmax=True`` normalises each row of weights first.
    """

    weights = False
    controls = ()

    def __init__(self, softmax: bool = False) -> None:
        super().__init__()
        if not isinstance(softmax, bool):
            raise TypeError(f"InterpolateActivation: softmax must be True or False, got {softmax!r}")
        self.softmax = softmax

    def forward(self, x: torch.Tensor, state: Any, interp_weights: torch.Tensor | None = None) -> torch.Tensor:
        if interp_weights is None:
            return x
        return mix_batch(x, interp_weights, self.softmax, "interp_weights")

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{ctx.function(mix_if_given)}({x}, {ctx.input('interp_weights')}, {bool(self.softmax)})"
