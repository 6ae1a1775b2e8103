"""Bent weights: computed once per change, swapped into the live module for the length of a call.

    >>> weights = BentWeights(vae)
    >>> weights.compute({"decoder.net.convt0.weight": [(tb.Scale(2), None)]})
    >>> saved = weights.swap_in()
    >>> try:
    ...     out = vae.decode(z)            # runs with the bent weight
    ... finally:
    ...     weights.swap_out(saved)        # the original Parameter objects are back

Swapping writes the module's parameter dicts directly, so a call costs a few dict writes
per bent weight, and the model never holds a bent weight outside a bended call. A tied
weight is swapped wherever it appears. If the original weight changes (a new object, an
in-place update, a move to another device), `changed()` says so and the bend is redone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .bending.callback import BendingCallback
from .errors import BendingError


@dataclass
class _Slot:
    """One place a weight lives: ``owner._parameters[key]`` (or ``owner._buffers[key]`` for a buffer)."""

    owner: nn.Module
    key: str
    store: str = "_parameters"

    @property
    def tensors(self) -> dict[str, Any]:
        return getattr(self.owner, self.store)


@dataclass
class _Entry:
    name: str
    slots: list[_Slot]
    original: torch.Tensor
    stamp: tuple[int, int]
    bent: torch.Tensor


def _stamp(t: torch.Tensor) -> tuple[int, int]:
    return (t._version, t.data_ptr())


class BentWeights:
    """The bent weights (and opted-in buffers) of one module, by name, and the swap that puts them in place."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.entries: dict[str, _Entry] = {}
        self._recurrent: list[nn.Module] = []  # owners that cache weight references

    def tensor(self, name: str) -> torch.Tensor:
        """The parameter, or else the buffer, named `name`."""
        try:
            return self.module.get_parameter(name)
        except AttributeError:
            return self.module.get_buffer(name)

    def slots(self, name: str) -> list[_Slot]:
        """Every (module, key) holding the tensor named `name` (several when tied)."""
        target = self.tensor(name)
        store = "_parameters" if isinstance(target, nn.Parameter) else "_buffers"
        found = []
        for owner in self.module.modules():
            for key, t in getattr(owner, store).items():
                if t is target and not any(s.owner is owner and s.key == key for s in found):
                    found.append(_Slot(owner, key, store))
        return found

    def aliases(self, name: str) -> list[str]:
        """Every state-dict name of the tensor named `name`."""
        target = self.tensor(name)
        named = list(self.module.named_parameters(remove_duplicate=False))
        named += list(self.module.named_buffers(remove_duplicate=False))
        return [n for n, t in named if t is target]

    def compute(self, plan: dict[str, Sequence[tuple[BendingCallback, Any]]], only: set[str] | None = None) -> None:
        """Bend each weight of `plan` through its callbacks, in order (only those in `only` if given)."""
        for name in list(self.entries):
            if name not in plan:
                del self.entries[name]
        for name, steps in plan.items():
            if only is not None and name not in only and name in self.entries:
                continue
            original = self.tensor(name)
            with torch.no_grad():
                x = original.detach().clone()  # a callback working in place cannot reach the model
                for cb, state in steps:
                    x = cb.forward(x, state)
                    if not isinstance(x, torch.Tensor) or x.shape != original.shape:
                        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                        raise BendingError(
                            f"{type(cb).__name__} turned weight {name} of shape {tuple(original.shape)} into {got}; "
                            "a weight bend must keep the shape"
                        )
            bent = x.to(original.dtype)
            if isinstance(original, nn.Parameter):
                bent = nn.Parameter(bent, requires_grad=False)
            self.entries[name] = _Entry(name, self.slots(name), original, _stamp(original), bent)
        owners = {id(s.owner): s.owner for e in self.entries.values() for s in e.slots}
        self._recurrent = [o for o in owners.values() if hasattr(o, "_flat_weights_names")]

    def changed(self) -> set[str]:
        """Names whose original weight was replaced or modified since it was bent."""
        out = set()
        for name, e in self.entries.items():
            slot = e.slots[0]
            if slot.tensors.get(slot.key) is not e.original or _stamp(e.original) != e.stamp:
                out.add(name)
        return out

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` with the bent weights in place."""
        if not self.entries:
            return fn(*args, **kwargs)
        saved = self.swap_in()
        try:
            return fn(*args, **kwargs)
        finally:
            self.swap_out(saved)

    def swap_in(self) -> list[tuple[_Slot | nn.Module, Any]]:
        """Put the bent weights in place; returns what `swap_out` needs to restore."""
        saved = []
        for e in self.entries.values():
            for slot in e.slots:
                tensors = slot.tensors
                saved.append((slot, tensors[slot.key]))
                tensors[slot.key] = e.bent
        for owner in self._recurrent:  # recurrent modules run from their own list of weight references
            saved.append((owner, owner.__dict__["_flat_weights"]))
            owner.__dict__["_flat_weights"] = [owner._parameters.get(n) for n in owner._flat_weights_names]
        return saved

    def swap_out(self, saved: list[tuple[_Slot | nn.Module, Any]]) -> None:
        """Restore exactly what `swap_in` replaced."""
        for slot, value in reversed(saved):
            if isinstance(slot, nn.Module):
                slot.__dict__["_flat_weights"] = value
            else:
                slot.tensors[slot.key] = value
