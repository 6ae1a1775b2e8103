"""Spatial bends of feature maps: `Rotate`, `Translate`, `Zoom` and `Flip`.

    >>> bended.bend(tb.Rotate(tb.BendingParameter("angle", 45.0)), "decoder_net_convt1", fn="decode")
    >>> bended.bend(tb.Translate(0.25, padding="wrap"), "decoder_net_convt1", fn="decode")

A tensor of rank 4 or more is a stack of 2-D maps on its last two axes, (B, C, H, W); a
tensor of rank 2 or 3, such as an audio activation (B, C, T), is a stack of 1-D maps on its
last axis. `Rotate` needs 2-D maps. Angles are in degrees, counter-clockwise as an image is
shown (``Rotate(90)`` is ``torch.rot90(x, 1, (-2, -1))``); shifts are fractions of the map
(``Translate(0.25)`` moves the content a quarter of the width to the right). Padding fills
what comes in from outside the map: ``"zeros"``, ``"reflection"`` or ``"wrap"`` (periodic).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from .callback import BendingCallback
from .checks import PADDINGS, check_choice, check_number
from .parameter import LiveValue
from .target import Target

Scalar = float | int | LiveValue


def _wrap_coordinates(u: torch.Tensor, size: int) -> torch.Tensor:
    """Normalised coordinates of a map of `size` pixels, wrapped, in the map padded by one pixel each side."""
    p = torch.remainder((u + 1.0) * size * 0.5 - 0.5, float(size)) + 1.0
    return (2.0 * p + 1.0) / (size + 2) - 1.0


def warp_maps(
    x: torch.Tensor, a: float, b: float, c: float, d: float, e: float, f: float, padding: str
) -> torch.Tensor:
    """Resample the maps of `x` at input coordinates ``(a*u + b*v + c, d*u + e*v + f)`` for each output
    coordinate ``(u, v)`` in [-1, 1] (u along the last axis). Bilinear; TorchScript-compatible."""
    shape = x.shape
    flat_1d = x.dim() < 4
    if flat_1d:
        maps = x.reshape(1, -1, 1, shape[-1])
    else:
        maps = x.reshape(1, -1, shape[-2], shape[-1])
    h, w = maps.shape[-2], maps.shape[-1]
    theta = torch.tensor([[[a, b, c], [d, e, f]]], dtype=maps.dtype, device=maps.device)
    if not maps.is_floating_point():
        theta = theta.float()
    grid = F.affine_grid(theta, [1, 1, h, w], align_corners=False)
    mode = padding
    if padding == "wrap":
        gu = _wrap_coordinates(grid[..., 0], w)
        gv = _wrap_coordinates(grid[..., 1], h) if not flat_1d else grid[..., 1]
        grid = torch.stack([gu, gv], dim=-1)
        pad = [1, 1, 0, 0] if flat_1d else [1, 1, 1, 1]
        maps = F.pad(maps, pad, mode="circular")
        mode = "border"
    out = F.grid_sample(maps, grid, mode="bilinear", padding_mode=mode, align_corners=False)
    return out.reshape(shape)


def rotate_maps(x: torch.Tensor, degrees: float, padding: str) -> torch.Tensor:
    """`x`'s 2-D maps rotated by `degrees` counter-clockwise about their centres."""
    t = math.radians(degrees)
    h, w = float(x.shape[-2]), float(x.shape[-1])
    cos, sin = math.cos(t), math.sin(t)
    return warp_maps(x, cos, -sin * h / w, 0.0, sin * w / h, cos, 0.0, padding)


def translate_maps(x: torch.Tensor, dx: float, dy: float, padding: str) -> torch.Tensor:
    """`x`'s maps shifted by `dx` of their width (right) and `dy` of their height (down)."""
    return warp_maps(x, 1.0, 0.0, -2.0 * dx, 0.0, 1.0, -2.0 * dy, padding)


def zoom_maps(x: torch.Tensor, factor: float, padding: str) -> torch.Tensor:
    """`x`'s maps scaled by `factor` about their centres (> 1 magnifies)."""
    if x.dim() < 4:
        return warp_maps(x, 1.0 / factor, 0.0, 0.0, 0.0, 1.0, 0.0, padding)
    return warp_maps(x, 1.0 / factor, 0.0, 0.0, 0.0, 1.0 / factor, 0.0, padding)


class _Spatial(BendingCallback):
    def _check_padding(self, padding: str) -> None:
        check_choice(type(self).__name__, "padding", padding, PADDINGS)

    def _check_rank(self, target: Target, rank: int) -> None:
        if len(target.shape) < rank:
            raise ValueError(
                f"{type(self).__name__} needs a tensor of rank >= {rank}, "
                f"got {target.name} of shape {tuple(target.shape)}"
            )


class Rotate(_Spatial):
    """Rotates each 2-D map by `degrees` counter-clockwise about its centre."""

    controls: ClassVar[tuple[str, ...]] = ("degrees",)

    def __init__(self, degrees: Scalar = 0.0, padding: str = "zeros") -> None:
        super().__init__()
        self.degrees = check_number(self, "degrees", degrees)
        self._check_padding(padding)
        self.padding = padding

    def setup(self, target: Target) -> Any:
        if len(target.shape) < 4:
            raise ValueError(
                f"Rotate needs 2-D maps, a tensor of rank >= 4 such as (B, C, H, W); "
                f"got {target.name} of shape {tuple(target.shape)}"
            )
        return None

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return rotate_maps(x, float(self.degrees), self.padding)

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{ctx.function(rotate_maps)}({x}, {ctx.float(self.degrees)}, {self.padding!r})"


class Translate(_Spatial):
    """Shifts each map by `x` of its width (right) and `y` of its height (down; 2-D maps only)."""

    controls: ClassVar[tuple[str, ...]] = ("x", "y")

    def __init__(self, x: Scalar = 0.0, y: Scalar = 0.0, padding: str = "zeros") -> None:
        super().__init__()
        self.x = check_number(self, "x", x)
        self.y = check_number(self, "y", y)
        self._check_padding(padding)
        self.padding = padding

    def setup(self, target: Target) -> Any:
        self._check_rank(target, 2)
        return None

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return translate_maps(x, float(self.x), float(self.y), self.padding)

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{ctx.function(translate_maps)}({x}, {ctx.float(self.x)}, {ctx.float(self.y)}, {self.padding!r})"


class Zoom(_Spatial):
    """Scales each map by `factor` about its centre: 2 magnifies the middle half, 0.5 shrinks it."""

    controls: ClassVar[tuple[str, ...]] = ("factor",)

    def __init__(self, factor: Scalar = 1.0, padding: str = "zeros") -> None:
        super().__init__()
        self.factor = check_number(self, "factor", factor, low=0, open_low=True)
        self._check_padding(padding)
        self.padding = padding

    def setup(self, target: Target) -> Any:
        self._check_rank(target, 2)
        return None

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        factor = float(self.factor)
        if factor <= 0:
            raise ValueError(f"Zoom: factor must be > 0, got {factor:g}")
        return zoom_maps(x, factor, self.padding)

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{ctx.function(zoom_maps)}({x}, {ctx.float(self.factor)}, {self.padding!r})"


class Flip(_Spatial):
    """Mirrors the tensor along `axis` (-1: left-right, -2: up-down of 2-D maps)."""

    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"Flip: axis must be an int, got {axis!r}")
        self.axis = axis

    def setup(self, target: Target) -> Any:
        (axis,) = target.normalize_dims(self.axis)
        if axis == 0 and target.batched:
            raise ValueError(
                f"Flip: axis {self.axis} is the batch axis of {target.name}; choose one of 1..{len(target.shape) - 1}"
            )
        return None

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:
        return x.flip(self.axis)

    def script(self, x: str, state: Any, ctx: Any) -> str:
        return f"{x}.flip({int(self.axis)})"
