"""Callbacks with a random draw per target: `Mask`, `Normal` and `Permute`.

    >>> bended.bend(tb.Mask(prob=0.2, seed=0), "decoder.net.convt0.weight")  # keep 20%
    >>> bended.bend(tb.Normal(std=0.3, dim=1), "decoder_net_convt1", fn="decode")  # one draw per channel
    >>> bended.bend(tb.Permute(dim=1, seed=0), "decoder_net_convt2", fn="decode")

Each target gets its own draw when the bend is made, from `seed` and the target's name,
so repeated calls agree. A callback made with ``seed=None`` draws its seed from torch's
global generator once, when it is made: ``torch.manual_seed`` before makes it
reproducible, and a saved bending config keeps the seed it drew.
On an activation the draw covers the non-batch axes and broadcasts over any batch
size, unless `dim` names the axes to draw along.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from .callback import BendingCallback, check_dims
from .checks import check_number
from .parameter import LiveValue
from .target import Target, resolve_seed

Dims = int | Sequence[int] | None


class _Draw:
    """A fixed random tensor, plus its latest derived form cached per (key, device, dtype)."""

    def __init__(self, base: torch.Tensor, target: Target) -> None:
        self.base = base
        self.target = target
        self._latest: tuple[Any, torch.Tensor] | None = None  # replaced whole, so threads never see half of it

    def get(self, key: Any, device: torch.device, dtype: torch.dtype, derive) -> torch.Tensor:
        full_key = (key, device, dtype)
        latest = self._latest
        if latest is None or latest[0] != full_key:
            latest = (full_key, derive(self.base).to(device=device, dtype=dtype))
            self._latest = latest
        return latest[1]


class Mask(BendingCallback):
    """Multiplies by a random 0/1 mask that keeps each element with probability `prob`.

    The mask is ``u < prob`` for a uniform draw `u` made once per target, so changing
    `prob` re-thresholds the same draw: the kept set grows smoothly with `prob`.
    """

    controls = ("prob",)

    def __init__(self, prob: float | LiveValue = 0.3, seed: int | None = None, dim: Dims = None) -> None:
        super().__init__()
        self.prob = check_number(self, "prob", prob, low=0.0, high=1.0)
        self.seed = resolve_seed(seed)
        self.dim = check_dims(self, "dim", dim)

    def setup(self, target: Target) -> _Draw:
        shape = target.state_shape(self.dim)
        return _Draw(torch.rand(shape, generator=target.generator(self.seed)), target)

    def forward(self, x: torch.Tensor, state: _Draw) -> torch.Tensor:
        prob = float(self.prob)
        return x * state.get(prob, x.device, x.dtype, lambda u: u < prob)

    def script(self, x: str, state: _Draw, ctx: Any) -> str:
        return f"{x} * ({ctx.tensor(state.base, 'mask')} < {ctx.float(self.prob)}).to({x}.dtype)"


def ordered_mask(x: torch.Tensor, ranks: torch.Tensor, prob: float) -> torch.Tensor:
    """`x` times a mask keeping the positions whose rank is below ``floor(prob * n)``. TorchScript-compatible."""
    keep = math.floor(prob * ranks.numel())
    return x * (ranks < keep).to(x.dtype)


class OrderedMask(BendingCallback):
    """Keeps exactly ``floor(prob * n)`` of the n positions (of the whole tensor, or along `dim`), zeroes the rest.

    The positions are ranked once per target by a seeded random permutation; the kept set
    is the lowest ranks, so masks are nested as `prob` grows. On an activation, n counts the
    non-batch positions (the mask broadcasts over the batch) unless `dim` names the axes.
    """

    controls = ("prob",)

    def __init__(self, prob: float | LiveValue = 0.3, dim: Dims = None, seed: int | None = None) -> None:
        super().__init__()
        self.prob = check_number(self, "prob", prob, low=0.0, high=1.0)
        self.dim = check_dims(self, "dim", dim)
        self.seed = resolve_seed(seed)

    def setup(self, target: Target) -> _Draw:
        shape = target.state_shape(self.dim)
        n = math.prod(shape)
        ranks = torch.randperm(n, generator=target.generator(self.seed)).reshape(shape)
        return _Draw(ranks, target)

    def forward(self, x: torch.Tensor, state: _Draw) -> torch.Tensor:
        return ordered_mask(x, state.get(None, x.device, torch.long, lambda r: r), float(self.prob))

    def script(self, x: str, state: _Draw, ctx: Any) -> str:
        return f"{ctx.function(ordered_mask)}({x}, {ctx.tensor(state.base, 'ranks')}, {ctx.float(self.prob)})"


class Normal(BendingCallback):
    """Adds gaussian noise: ``x + std * n`` with `n` ~ N(0, 1) drawn once per target."""

    controls = ("std",)

    def __init__(self, std: float | LiveValue = 0.3, seed: int | None = None, dim: Dims = None) -> None:
        super().__init__()
        self.std = check_number(self, "std", std)
        self.seed = resolve_seed(seed)
        self.dim = check_dims(self, "dim", dim)

    def setup(self, target: Target) -> _Draw:
        shape = target.state_shape(self.dim)
        return _Draw(torch.randn(shape, generator=target.generator(self.seed)), target)

    def forward(self, x: torch.Tensor, state: _Draw) -> torch.Tensor:
        return x + float(self.std) * state.get(None, x.device, x.dtype, lambda n: n)

    def script(self, x: str, state: _Draw, ctx: Any) -> str:
        return f"{x} + {ctx.float(self.std)} * {ctx.tensor(state.base, 'noise')}.to({x}.dtype)"


class Permute(BendingCallback):
    """Shuffles along `dim` with a fixed random permutation drawn once per target."""

    controls = ()

    def __init__(self, dim: int, seed: int | None = None) -> None:
        super().__init__()
        self.dim = check_dims(self, "dim", dim, allow_none=False)
        if not isinstance(self.dim, int):
            raise TypeError(f"Permute takes one int dim, got {dim!r}")
        self.seed = resolve_seed(seed)

    def setup(self, target: Target) -> _Draw:
        (axis,) = target.normalize_dims(self.dim)
        if target.batched and axis == 0:
            raise ValueError(
                f"Permute(dim={self.dim}) would shuffle the batch axis of {target.qualified}; "
                "pick a non-batch axis (1 and above)"
            )
        perm = torch.randperm(target.shape[axis], generator=target.generator(self.seed))
        return _Draw(perm, target)

    def forward(self, x: torch.Tensor, state: _Draw) -> torch.Tensor:
        size = x.shape[self.dim]
        if size != state.base.numel():
            raise ValueError(
                f"Permute on {state.target.qualified}: dim {self.dim} has size {size}, "
                f"but the permutation was drawn for size {state.base.numel()}"
            )
        perm = state.get(None, x.device, torch.long, lambda p: p)
        return x.index_select(self.dim, perm)

    def script(self, x: str, state: _Draw, ctx: Any) -> str:
        return f"{x}.index_select({int(self.dim)}, {ctx.tensor(state.base, 'permutation')})"
