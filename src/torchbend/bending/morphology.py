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
    kw = min(k, 2 * shape[-1] - 1)  # a wider window covers the whole map from every pixel: the same max
    if x.dim() >= 4:
        kh = min(k, 2 * shape[-2] - 1)
        out = F.max_pool2d(x.reshape(1, -1, shape[-2], shape[-1]), [kh, kw], 1, [kh // 2, kw // 2])
    else:
        out = F.max_pool1d(x.reshape(1, -1, shape[-1]), kw, 1, kw // 2)
    return out.reshape(shape)


def erode_maps(x: torch.Tensor, k: int) -> torch.Tensor:
    """Grey-scale erosion: each value becomes the min of its neighbourhood. TorchScript-compatible."""
    return -dilate_maps(-x, k)


def _gaussian(sigma: float, size: int, x: torch.Tensor) -> torch.Tensor:
    """Normalised Gaussian taps over ceil(3 sigma) pixels each side, at most ``size - 1`` (the map's
    extent, so a huge sigma costs no more than the map); TorchScript-compatible."""
    radius = size - 1 if 3.0 * sigma >= size - 1 else max(1, int(math.ceil(3.0 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    return kernel / kernel.sum()


def blur_maps(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of each map (separable, reflected edges, taps over 3 sigma but never past the map,
    so a sigma far wider than the map averages it). TorchScript-compatible."""
    if sigma <= 0.0 or x.numel() == 0:
        return x
    shape = x.shape
    w = shape[-1]
    kw = _gaussian(sigma, w, x)
    rw = kw.numel() // 2
    if x.dim() >= 4:
        h = shape[-2]
        kh = _gaussian(sigma, h, x)
        rh = kh.numel() // 2
        maps = x.reshape(-1, 1, h, w)
        maps = F.conv2d(F.pad(maps, [rw, rw, 0, 0], mode="reflect"), kw.view(1, 1, 1, -1))
        maps = F.conv2d(F.pad(maps, [0, 0, rh, rh], mode="reflect"), kh.view(1, 1, -1, 1))
    else:
        maps = x.reshape(-1, 1, w)
        maps = F.conv1d(F.pad(maps, [rw, rw], mode="reflect"), kw.view(1, 1, -1))
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
            raise ValueError(
                f"{type(self).__name__}: k must be odd (1, 3, 5, ...) so the window is centred, got {int(self.k)}"
            )

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
