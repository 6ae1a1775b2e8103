"""Bent weights: the original weights through their callbacks, computed once and kept until something changes.

    >>> weights = BentWeights(vae)
    >>> bent = weights.compute({"decoder.net.convt0.weight": [(tb.Scale(2), None)]})
    >>> entry = bent["decoder.net.convt0.weight"]
    >>> torch.equal(entry.bent, 2 * vae.decoder.net.convt0.weight)
    True

A bent weight is a new tensor; the model's own tensors and dicts are never written.
Each result is cached under what it was computed from (the callbacks and their states,
the values of their live parameters, the original tensor and its version), so a change
of one parameter recomputes only the weights that read it. `Entry.current()` says
whether the original was since replaced, modified in place or moved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .bending.callback import BendingCallback
from .errors import BendingError
from .view import Slot

Step = tuple[BendingCallback, Any]  # a callback and its state for this weight


def _stamp(t: torch.Tensor) -> tuple[int, int]:
    return (t._version, t.data_ptr())


@dataclass(frozen=True)
class Entry:
    """One bent weight: where it lives in the model, the original it was computed from, and the result."""

    name: str
    slots: tuple[Slot, ...]
    original: torch.Tensor
    stamp: tuple[int, int]
    bent: torch.Tensor

    def current(self) -> bool:
        """True while the model still holds `original`, unmodified, in its first slot."""
        owner, store, key = self.slots[0]
        return owner.__dict__[store].get(key) is self.original and _stamp(self.original) == self.stamp


class BentWeights:
    """The bendable tensors of one module, by name, and a cache of their bent versions."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self._cache: dict[str, tuple[tuple, Entry]] = {}
        self._slots: dict[str, tuple[Slot, ...]] = {}

    def tensor(self, name: str) -> torch.Tensor:
        """The parameter, or else the buffer, named `name`."""
        try:
            return self.module.get_parameter(name)
        except AttributeError:
            return self.module.get_buffer(name)

    def forget_structure(self) -> None:
        """Forget where each tensor lives (after submodules were replaced)."""
        self._slots.clear()

    def slots(self, name: str) -> tuple[Slot, ...]:
        """Every (module, store, key) holding the tensor named `name` (several when tied)."""
        slots = self._slots.get(name)
        if slots is not None:
            owner, store, key = slots[0]
            if owner.__dict__[store].get(key) is not None:
                return slots
        slots = self._slots[name] = self._find_slots(name)
        return slots

    def _find_slots(self, name: str) -> tuple[Slot, ...]:
        target = self.tensor(name)
        store = "_parameters" if isinstance(target, nn.Parameter) else "_buffers"
        found: list[Slot] = []
        for owner in self.module.modules():
            for key, t in owner.__dict__[store].items():
                if t is target and not any(s[0] is owner and s[2] == key for s in found):
                    found.append((owner, store, key))
        return tuple(found)

    def aliases(self, name: str) -> list[str]:
        """Every state-dict name of the tensor named `name`."""
        target = self.tensor(name)
        named = list(self.module.named_parameters(remove_duplicate=False))
        named += list(self.module.named_buffers(remove_duplicate=False))
        return [n for n, t in named if t is target]

    def compute(self, plan: dict[str, Sequence[Step]], bases: dict[str, torch.Tensor] | None = None
                ) -> dict[str, Entry]:
        """Each weight of `plan` bent through its steps, in order; cached results are reused.

        A weight is bent from `bases[name]` when given (a weight version), else from the
        module's own tensor. Live parameters are read as they are now (call it inside
        `frozen_values` for a snapshot). Raises `BendingError` naming the weight and callback.
        """
        bases = bases or {}
        for name in list(self._cache):
            if name not in plan:
                del self._cache[name]
        entries = {}
        for name, steps in plan.items():
            slots = self.slots(name)
            owner, store, key = slots[0]
            original = owner.__dict__[store][key]
            source = bases.get(name, original)
            key = (tuple(steps), tuple(p.value for cb, _ in steps for p in cb.live_parameters()),
                   original, _stamp(original), source)
            hit = self._cache.get(name)
            if hit is not None and _same_key(hit[0], key):
                entries[name] = hit[1]
                continue
            if any(slot[0].__dict__[slot[1]].get(slot[2]) is not original for slot in slots):
                slots = self._slots[name] = self._find_slots(name)  # a tied weight was untied or replaced
            entry = Entry(name, slots, original, key[3], bend_tensor(name, source, steps))
            self._cache[name] = (key, entry)
            entries[name] = entry
        return entries


def _same_key(a: tuple, b: tuple) -> bool:
    (steps_a, values_a, original_a, stamp_a, source_a), (steps_b, values_b, original_b, stamp_b, source_b) = a, b
    return (len(steps_a) == len(steps_b) and all(x[0] is y[0] and x[1] is y[1] for x, y in zip(steps_a, steps_b))
            and values_a == values_b and original_a is original_b and stamp_a == stamp_b and source_a is source_b)


def bend_tensor(name: str, original: torch.Tensor, steps: Sequence[Step]) -> torch.Tensor:
    """`original` through each callback of `steps`, as a new tensor of the same shape and dtype."""
    with torch.no_grad():
        x = original.detach().clone()  # a callback working in place cannot reach the model
        for cb, state in steps:
            x = cb.forward(x, state)
            if not isinstance(x, torch.Tensor) or x.shape != original.shape:
                got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise BendingError(f"{type(cb).__name__} turned {name} of shape {tuple(original.shape)} into {got}; "
                                   "a weight bend must keep the shape")
        if x.is_floating_point() and not original.is_floating_point() and original.dtype != torch.bool:
            raise BendingError(f"{type(cb).__name__} turned {name}, a tensor of {original.dtype}, into floating-point "
                               "values that would be truncated back: bend integer tensors with callbacks that keep "
                               "integers (Mask, Permute), or not at all")
    bent = x.to(original.dtype)
    if isinstance(original, nn.Parameter):
        bent = nn.Parameter(bent, requires_grad=False)
    return bent
