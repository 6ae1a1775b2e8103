"""Neighbourhood bends of feature maps: `Dilate`, `Erode` (grey-scale), `Blur` and `Sobel` edges.

    >>> bended.bend(tb.Dilate(3), "decoder_net_convt1", fn="decode")
    >>> bended.bend(tb.Blur(tb.BendingParameter("sigma", 1.0)), "decoder_net_convt1", fn="decode")

Maps are the last two axes of a tensor of rank >= 4 and the last axis of a lower rank, as in
`torchbend.bending.spatial`. Dilation is a max over a `k`-wide window (max-pooling with stride
1), erosion a min; `k` is odd so the window is centred.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from .callback import BendingCallback
from .checks import check_number, keep_checked
from .parameter import LiveValue


def dilate_maps(x: torch.Tensor, k: int) -> torch.Tensor:
    """Grey-scale dilation: each value becomes the max of its k-wide (k x k) neighbourhood. TorchScript-compatible."""
    if k < 1 or k % 2 == 0:
        raise ValueError("dilation and erosion need an odd window size k (1, 3, 5, ...)")
    if k == 1:
        return x
    shape = x.shape
    if x.dim() >= 4:
        out = F.max_pool2d(x.reshape(1, -1, shape[-2], shape[-1]), k, 1, k // 2)
    else:
        out = F.max_pool1d(x.reshape(1, -1, shape[-1]), k, 1, k // 2)
    return out.reshape(shape)


def erode_maps(x: torch.Tensor, k: int) -> torch.Tensor:
    """Grey-scale erosion: each value becomes the min of its neighbourhood. TorchScript-compatible."""
    return -dilate_maps(-x, k)


def _pad_mode(size: int, pad: int) -> str:
    return "reflect" if pad < size else "replicate"


def blur_maps(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of each map (separable, reflected edges, radius ceil(3 sigma)). TorchScript-compatible."""
    if sigma <= 0.0:
        return x
    radius = max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    shape = x.shape
    w = shape[-1]
    if x.dim() >= 4:
        h = shape[-2]
        maps = x.reshape(-1, 1, h, w)
        maps = F.pad(maps, [radius, radius, 0, 0], mode=_pad_mode(w, radius))
        maps = F.conv2d(maps, kernel.view(1, 1, 1, -1))
        maps = F.pad(maps, [0, 0, radius, radius], mode=_pad_mode(h, radius))
        maps = F.conv2d(maps, kernel.view(1, 1, -1, 1))
    else:
        maps = x.reshape(-1, 1, w)
        maps = F.pad(maps, [radius, radius], mode=_pad_mode(w, radius))
        maps = F.conv1d(maps, kernel.view(1, 1, -1))
    return maps.reshape(shape)


def sobel_maps(x: torch.Tensor) -> torch.Tensor:
    """Edge magnitude of each map: ``sqrt(gx^2 + gy^2)`` of the 3x3 Sobel gradients (replicated edges);
    for 1-D maps, the absolute central difference. TorchScript-compatible."""
    shape = x.shape
    if x.dim() >= 4:
        maps = F.pad(x.reshape(-1, 1, shape[-2], shape[-1]), [1, 1, 1, 1], mode="replicate")
        gx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=x.dtype, device=x.device)
        kernels = torch.stack([gx, gx.t()]).unsqueeze(1)
        g = F.conv2d(maps, kernels)
        return g.pow(2).sum(dim=1).sqrt().reshape(shape)
    maps = F.pad(x.reshape(-1, 1, shape[-1]), [1, 1], mode="replicate")
    g = F.conv1d(maps, torch.tensor([[[-0.5, 0.0, 0.5]]], dtype=x.dtype, device=x.device))
    return g.abs().reshape(shape)


class _Window(BendingCallback):
    controls: ClassVar[tuple[str, ...]] = ("k",)

    def __init__(self, k: int | LiveValue = 3) -> None:
        super().__init__()
        self.k = check_number(self, "k", k, low=1, integer=True)
        keep_checked(self, self._check_odd, k)

    def _check_odd(self) -> None:
        if int(self.k) % 2 == 0:
            raise ValueError(f"{type(self).__name__}: k must be odd (1, 3, 5, ...) so the window is centred, "
                             f"got {int(self.k)}")

    def _size(self) -> int:
        return int(self.k)


class Dilate(_Window):
    """Grey-scale dilation: each value becomes the max over its k x k neighbourhood (k odd)."""

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return dilate_maps(x, self._size())

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{ctx.function(dilate_maps)}({x}, int({ctx.float(self.k)}))"


class Erode(_Window):
    """Grey-scale erosion: each value becomes the min over its k x k neighbourhood (k odd)."""

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return erode_maps(x, self._size())

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{ctx.function(erode_maps)}({x}, int({ctx.float(self.k)}))"


class Blur(BendingCallback):
    """Gaussian blur of each map with standard deviation `sigma` pixels (0 leaves it unchanged)."""

    controls: ClassVar[tuple[str, ...]] = ("sigma",)

    def __init__(self, sigma: float | LiveValue = 1.0) -> None:
        super().__init__()
        self.sigma = check_number(self, "sigma", sigma, low=0)

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return blur_maps(x, float(self.sigma))

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{ctx.function(blur_maps)}({x}, {ctx.float(self.sigma)})"


class Sobel(BendingCallback):
    """Replaces each map by its edge magnitude (Sobel gradients on 2-D maps, central difference on 1-D)."""

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return sobel_maps(x)

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{ctx.function(sobel_maps)}({x})"
