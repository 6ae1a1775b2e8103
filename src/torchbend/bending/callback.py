"""The callback contract: a small module that takes a tensor and returns it bent.

    >>> class Clip(tb.BendingCallback):
    ...     def __init__(self, limit=1.0):
    ...         super().__init__()
    ...         self.limit = limit                   # a number or a tb.BendingParameter
    ...     def forward(self, x, state):
    ...         return x.clamp(-float(self.limit), float(self.limit))
    >>> bended.bend(Clip(0.5), "decoder.net.convt0.weight")

A weight callback runs once, when the bend or one of its parameters changes; an
activation callback runs at every call. Per-target state (a mask, a noise draw)
comes from `setup(target)` and is handed back to `forward` as `state`. Keyword
arguments of `forward` after `state` are run-time inputs of the bended method.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any, ClassVar

import torch
from torch import nn

from .parameter import BendingParameter, sources_of
from .target import Target


class BendingCallback(nn.Module):
    """Base class of every callback. Subclasses implement `forward(x, state)`.

    Class flags `weights` and `activations` say what it can bend. `setup(target)`
    returns the per-target state (default None). A callback must never modify its
    input in place.
    """

    weights: ClassVar[bool] = True
    activations: ClassVar[bool] = True

    def setup(self, target: Target) -> Any:
        """Create the state for one target (called when the bend is made)."""
        return None

    def forward(self, x: torch.Tensor, state: Any) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward(x, state)")

    def can_bend(self, kind: str) -> bool:
        return self.weights if kind == "weight" else self.activations

    def script(self, x: str, state: Any, ctx: Any) -> str:
        """A TorchScript expression computing this bend of the tensor named `x` (for `bended.script()`).

        `ctx` turns values into code: ``ctx.float(self.scale)`` for a number or a live
        parameter, ``ctx.tensor(t, "mask")`` for a tensor, ``ctx.function(f)`` for a scriptable
        function, ``ctx.input("name")`` for a run-time input. Callbacks without one cannot be exported.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no TorchScript form: implement script(x, state, ctx) on it, "
            "or remove that bend before exporting"
        )

    def live_parameters(self) -> Iterator[BendingParameter]:
        """The bending parameters this callback reads, found among its attributes."""
        seen: set[int] = set()
        for module in self.modules():  # self, then members of chains
            for value in vars(module).values():
                for item in value if isinstance(value, (list, tuple)) else (value,):
                    for p in sources_of(item):
                        if id(p) not in seen:
                            seen.add(id(p))
                            yield p

    def runtime_inputs(self) -> tuple[str, ...]:
        """Names of the keyword arguments `forward` takes after `state`."""
        params = list(inspect.signature(self.forward).parameters.values())[2:]
        return tuple(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))

    def __rshift__(self, other: BendingCallback) -> CallbackChain:
        if not isinstance(other, BendingCallback):
            return NotImplemented
        return CallbackChain(self, other)

    def extra_repr(self) -> str:
        shown = []
        for name, value in vars(self).items():
            if not name.startswith("_") and name != "training":
                shown.append(f"{name}={value!r}")
        return ", ".join(shown)


class CallbackChain(BendingCallback):
    """Callbacks applied one after the other: ``Scale(2) >> Bias(1)`` is ``2x + 1``."""

    def __init__(self, *callbacks: BendingCallback) -> None:
        super().__init__()
        flat: list[BendingCallback] = []
        for cb in callbacks:
            if not isinstance(cb, BendingCallback):
                raise TypeError(f"CallbackChain takes bending callbacks, got {type(cb).__name__}")
            flat.extend(cb.callbacks if isinstance(cb, CallbackChain) else [cb])
        self.callbacks = nn.ModuleList(flat)
        self._inputs = [cb.runtime_inputs() for cb in flat]

    def can_bend(self, kind: str) -> bool:
        return all(cb.can_bend(kind) for cb in self.callbacks)

    def setup(self, target: Target) -> Any:
        return tuple(cb.setup(target) for cb in self.callbacks)

    def runtime_inputs(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for names in self._inputs for name in names))

    def forward(self, x: torch.Tensor, state: Any, **inputs: Any) -> torch.Tensor:
        for cb, cb_state, names in zip(self.callbacks, state, self._inputs):
            x = cb.forward(x, cb_state, **{k: inputs[k] for k in names if k in inputs})
        return x

    def __rshift__(self, other: BendingCallback) -> CallbackChain:
        return CallbackChain(self, other)

    def extra_repr(self) -> str:
        return ""
