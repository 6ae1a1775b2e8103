"""Learnable values: `Trainable`, a tensor that a callback reads like a live parameter and `tb.optimize` learns.

    >>> gain = tb.Trainable(1.0, shape=(32, 1, 1))          # one gain per channel of a (B, 32, H, W) activation
    >>> bended.bend(tb.Scale(gain), "decode:decoder_net_convt1")
    >>> run = tb.optimize(bended, "decode", {"z": z}, lambda out: -out.mean(), steps=50)
    >>> gain.value.shape
    torch.Size([32, 1, 1])

A `Trainable` is the one concept for learned bends: it is accepted wherever a callback takes a differentiable
argument (`Scale.scale`, `Bias.bias`, `Affine.scale` and `.bias`, `LowRank.u` and `.v`; other arguments refuse it
when the callback is made). Its shape broadcasts onto the bent tensor's trailing axes, numpy-style, and is
checked against the tensor when the bend is made: ``(C, 1, 1)`` is one value per channel of a ``(B, C, H, W)``
activation, ``(D,)`` one per feature of a ``(B, T, D)`` residual stream, ``(O, 1, 1, 1)`` one per output channel
of a conv weight; `tb.LowRank` takes two ``(D, r)`` factors of a low-rank map of the features.

Callbacks read it with `amount(value, x)`. With gradients on (as `tb.optimize` runs), that is the learned
tensor itself, so gradients reach it through weight and activation bends alike; otherwise it is a detached
copy of its current value, taken whole (a call never reads a half-updated tensor). The value a bend uses is
``origin + strength * (learned - origin)``: `origin` is the initial value, so `strength` (a number or a live
`tb.BendingParameter`) scales the learned offset afterwards: 0 undoes the learning, 2 exaggerates it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, cast

import torch
from torch import nn

from ..naming import is_python_name
from .parameter import _FROZEN, _MISSING, LiveValue, sources_of

MAX_ELEMENTS = 1 << 24  # a learned bend is a gain, a vector, a low-rank factor: not a model


class Trainable:
    """A learnable float tensor (or number) for a callback argument; `tb.optimize` finds its value.

        >>> steer = tb.Trainable(0.0, shape=(768,), name="steer")      # a steering vector
        >>> bended.bend(tb.Bias(steer), "forward:transformer_h_3")
        >>> steer.value.shape
        torch.Size([768])

    `init` is a number or a tensor; `shape`, when given, is the shape it is broadcast to. `name` (an
    identifier) names it in configs and exports; `strength` scales the learned offset (see the module).
    """

    def __init__(
        self,
        init: Any,
        shape: Iterable[int] | None = None,
        name: str | None = None,
        strength: Any = 1.0,
        dtype: torch.dtype | None = None,
        device: Any = None,
    ) -> None:
        if name is not None and not is_python_name(name):
            raise ValueError(f"Trainable: name must be a Python identifier that is not a keyword, got {name!r}")
        if isinstance(init, bool) or not isinstance(init, (int, float, torch.Tensor)):
            raise TypeError(f"Trainable: init must be a number or a float tensor, got {type(init).__name__}")
        value = torch.as_tensor(init).detach()
        if not (value.is_floating_point() or isinstance(init, (int, float))):
            raise TypeError(f"Trainable: init must be a float tensor, got a tensor of {value.dtype}")
        value = value.to(
            dtype=dtype or (value.dtype if value.is_floating_point() else torch.get_default_dtype()), device=device
        )
        if shape is not None:
            shape = tuple(shape)
            if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
                raise ValueError(f"Trainable: shape must be positive ints, got {shape!r}")
            try:
                value = value.expand(shape)
            except RuntimeError:
                raise ValueError(
                    f"Trainable: init of shape {tuple(value.shape)} does not broadcast to shape {shape}"
                ) from None
        if value.numel() > MAX_ELEMENTS:
            raise ValueError(f"Trainable: {value.numel()} values is more than a bend needs (at most {MAX_ELEMENTS})")
        if not bool(torch.isfinite(value).all()):
            raise ValueError("Trainable: init holds NaN or infinite values")
        if not isinstance(strength, LiveValue) and (
            isinstance(strength, bool) or not isinstance(strength, (int, float)) or not math.isfinite(strength)
        ):
            raise TypeError(f"Trainable: strength must be a finite number or a tb.BendingParameter, got {strength!r}")
        self.name = name
        self.strength = strength
        self.origin = value.clone().contiguous()
        self.parameter = nn.Parameter(value.clone().contiguous())
        self._lock = threading.Lock()
        self._published: tuple[int, torch.Tensor] = (-1, self.origin)

    @property
    def shape(self) -> torch.Size:
        return self.parameter.shape

    @property
    def value(self) -> torch.Tensor:
        """The learned tensor now, detached (a copy: changing it changes nothing)."""
        return self._detached().clone()

    @value.setter
    def value(self, new: Any) -> None:
        new = torch.as_tensor(new, dtype=self.parameter.dtype, device=self.parameter.device)
        if new.shape != self.shape or not bool(torch.isfinite(new).all()):
            raise ValueError(
                f"Trainable{'' if self.name is None else ' ' + repr(self.name)}: a new value must be "
                f"finite and of shape {tuple(self.shape)}, got shape {tuple(new.shape)}"
            )
        with self._lock, torch.no_grad():
            self.parameter.copy_(new)

    def stamp(self) -> int:
        """Changes whenever the learned tensor does (an optimiser step, a new `value`)."""
        return self.parameter._version

    def needs_graph(self) -> bool:
        """True where a read now gives the learned tensor itself, with gradients."""
        return torch.is_grad_enabled() and self.parameter.requires_grad

    def read(self) -> torch.Tensor:
        """The value a bend uses now: ``origin + strength * (learned - origin)``."""
        frozen = _FROZEN.get()
        if frozen is not None:
            value = frozen.get(self, _MISSING)
            if value is not _MISSING:
                return cast(torch.Tensor, value)  # the tensors frozen for a call
        learned = self.parameter if self.needs_graph() else self._detached()
        strength = float(self.strength)
        return learned if strength == 1.0 else self.origin + strength * (learned - self.origin)

    def _detached(self) -> torch.Tensor:
        with self._lock:
            version, tensor = self._published
            if version != self.parameter._version:
                tensor = self.parameter.detach().clone()
                self._published = (self.parameter._version, tensor)
            return tensor

    def sources(self) -> Iterator[Any]:
        """The bending parameters it reads (its strength's)."""
        yield from sources_of(self.strength)

    def __float__(self) -> float:
        if self.parameter.numel() != 1:
            raise TypeError(f"{self!r} holds {self.parameter.numel()} values, not one number")
        return float(self.read().item())

    def __repr__(self) -> str:
        name = "" if self.name is None else f"{self.name!r}, "
        if self.parameter.numel() == 1:
            return f"Trainable({name}{float(self._detached().reshape(())):.4g})"
        return f"Trainable({name}shape={tuple(self.shape)})"


@contextmanager
def updating(trainables: Iterable[Trainable]) -> Iterator[None]:
    """Hold the trainables while their tensors are written in place (an optimiser step), so reads from other
    threads see a whole value, the one before or the one after."""
    with ExitStack() as stack:
        for t in sorted(set(trainables), key=id):
            stack.enter_context(t._lock)
        yield


def amount(value: Any, x: torch.Tensor, owner: Any = "", name: str = "") -> Any:
    """What a callback multiplies or adds: ``float(value)`` for a number or a live parameter, the tensor of a
    `Trainable` (cast to `x`'s dtype and device; a clear ValueError if it does not broadcast onto `x`)."""
    if not isinstance(value, Trainable):
        return float(value)
    t = value.read()
    if t.dtype != x.dtype or t.device != x.device:
        t = t.to(device=x.device, dtype=x.dtype)
    if t.dim() > x.dim() or any(a != 1 and a != b for a, b in zip(reversed(t.shape), reversed(x.shape))):
        who = owner if isinstance(owner, str) else type(owner).__name__
        raise ValueError(
            f"{who}: {name} is a tb.Trainable of shape {tuple(t.shape)}, which does not fit a tensor of shape "
            f"{tuple(x.shape)}: its shape must broadcast onto the bent tensor's trailing axes without changing it, "
            "e.g. (C, 1, 1) for one value per channel of a (B, C, H, W) activation, (D,) for one per feature of a "
            "(B, T, D) one, (O, 1, 1, 1) for one per output channel of a conv weight"
        )
    return t


def script_amount(value: Any, ctx: Any, hint: str) -> str:
    """The TorchScript code of `amount`: a number or parameter as `ctx.float`, a `Trainable`'s value baked in
    as a tensor attribute (its learned offset times its strength, when that is a live parameter)."""
    if not isinstance(value, Trainable):
        return str(ctx.float(value))
    learned = value._detached()
    if not isinstance(value.strength, LiveValue):
        return str(ctx.tensor(value.read(), hint))
    return (
        f"({ctx.tensor(value.origin, hint + '_origin')} + {ctx.float(value.strength)} * "
        f"{ctx.tensor(learned - value.origin, hint + '_offset')})"
    )
