"""The callback contract: a small module that takes a tensor and returns it bent.

    >>> class Clip(tb.BendingCallback):
    ...     controls = ("limit",)                    # attributes that may hold live parameters
    ...     def __init__(self, limit=1.0):
    ...         super().__init__()
    ...         self.limit = tb.check_number(self, "limit", limit, low=0)   # a number or a tb.BendingParameter
    ...     def forward(self, x, state):
    ...         return x.clamp(-float(self.limit), float(self.limit))
    >>> bended.bend(Clip(0.5), "decoder.net.convt0.weight")

A weight callback runs once, when the bend or one of its parameters changes; an
activation callback runs at every call. Per-target state (a mask, a noise draw)
comes from `setup(target)` and is handed back to `forward` as `state`. Keyword
arguments of `forward` after `state` are run-time inputs of the bended method.
Arguments are checked when the callback is made (`check_number`), so a bad value
fails there, not at some later call.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from .parameter import BendingParameter, LiveValue, sources_of
from .target import Target
from .trainable import Trainable


def check_flag(owner: Any, name: str, value: Any) -> Any:
    """`value` if it is a bool or a live value; else a TypeError naming the argument."""
    if isinstance(value, (bool, LiveValue)):
        return value
    raise TypeError(f"{type(owner).__name__}: {name} must be True, False or a tb.BendingParameter, got {value!r}")


def check_dims(owner: Any, name: str, value: Any, allow_none: bool = True) -> Any:
    """`value` if it is an int, a sequence of ints (or None when allowed); else a TypeError."""
    if value is None and allow_none:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(d, int) and not isinstance(d, bool) for d in value)
    ):
        return tuple(value)
    raise TypeError(
        f"{type(owner).__name__}: {name} must be an int{', a list of ints or None' if allow_none else ''}"
        f", got {value!r}"
    )


class BendingCallback(nn.Module):
    """Base class of every callback. Subclasses implement `forward(x, state)`.

    Class flags `weights` and `activations` say what it can bend. `setup(target)`
    returns the per-target state (default None). A callback must never modify its
    input in place.
    """

    weights: ClassVar[bool] = True
    activations: ClassVar[bool] = True
    controls: ClassVar[tuple[str, ...] | None] = None  # attributes holding live values (None: look everywhere)

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
        """The bending parameters this callback reads: those in its declared `controls` attributes
        (or, when it declares none, in any attribute), also inside lists, tuples, sets and dicts."""
        seen: set[int] = set()
        for module in self.modules():  # self, then members of chains
            names = (
                module.controls
                if isinstance(module, BendingCallback) and module.controls is not None
                else list(vars(module))
            )
            for name in names:
                for p in _parameters_in(vars(module).get(name)):
                    if id(p) not in seen:
                        seen.add(id(p))
                        yield p

    def trainables(self) -> list[Trainable]:
        """The `tb.Trainable` values this callback reads (in its `controls`, as `live_parameters`)."""
        found: dict[int, Trainable] = {}
        for module in self.modules():
            names = (
                module.controls
                if isinstance(module, BendingCallback) and module.controls is not None
                else list(vars(module))
            )
            for name in names:
                for t in _trainables_in(vars(module).get(name)):
                    found.setdefault(id(t), t)
        return list(found.values())

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


def _parameters_in(value: Any, depth: int = 0) -> Iterator[BendingParameter]:
    if isinstance(value, (LiveValue, Trainable)):
        yield from value.sources() if isinstance(value, Trainable) else sources_of(value)
    elif depth < 4 and isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from _parameters_in(item, depth + 1)
    elif depth < 4 and isinstance(value, dict):
        for item in value.values():
            yield from _parameters_in(item, depth + 1)


def _trainables_in(value: Any, depth: int = 0) -> Iterator[Trainable]:
    if isinstance(value, Trainable):
        yield value
    elif depth < 4 and isinstance(value, (list, tuple, set, frozenset, dict)):
        for item in value.values() if isinstance(value, dict) else value:
            yield from _trainables_in(item, depth + 1)


class CallbackChain(BendingCallback):
    """Callbacks applied one after the other: ``Scale(2) >> Bias(1)`` is ``2x + 1``."""

    if TYPE_CHECKING:  # for the type checker only (TorchScript would read a class annotation)
        callbacks: Sequence[BendingCallback]  # an nn.ModuleList of them

    def __init__(self, *callbacks: BendingCallback) -> None:
        super().__init__()
        flat: list[BendingCallback] = []
        for cb in callbacks:
            if not isinstance(cb, BendingCallback):
                raise TypeError(f"CallbackChain takes bending callbacks, got {type(cb).__name__}")
            flat.extend(cb.callbacks if isinstance(cb, CallbackChain) else [cb])
        self.callbacks = nn.ModuleList(flat)  # type: ignore[assignment]  # a ModuleList of BendingCallbacks
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

    controls = ()

    def extra_repr(self) -> str:
        return ""
