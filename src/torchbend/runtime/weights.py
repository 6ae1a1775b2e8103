"""Bent weights: the original weights through their callbacks, computed once and kept until something changes.

    >>> weights = BentWeights(vae)
    >>> bent = weights.compute({"decoder.net.convt0.weight": [(tb.Scale(2), None)]})
    >>> entry = bent["decoder.net.convt0.weight"]
    >>> torch.equal(entry.bent, 2 * vae.decoder.net.convt0.weight)
    True

A bent weight is a new tensor; the model's own tensors and dicts are never written. A weight bent by a
`tb.Trainable` that needs gradients (gradients on, the trainable's tensor requiring them) is computed with its
graph to the trainable, for one call only (a graph serves one backward pass), and is never cached.
Each result is cached under what it was computed from (the callbacks and their states,
the values of their live parameters, the original tensor and its version), so a change
of one parameter recomputes only the weights that read it. `Entry.current()` says
whether the original was since replaced, modified in place or moved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..bending.callback import BendingCallback
from ..bending.trainable import Trainable
from ..errors import BendingError
from .effective import Effective, effective_weights
from .view import Slot

Step = tuple[BendingCallback, Any]  # a callback and its state for this weight


def _stamp(t: torch.Tensor) -> tuple[int, int]:
    return (t._version, t.data_ptr())


Check = tuple[nn.Module, str, str, torch.Tensor, tuple[int, int]]  # a slot, the tensor it held, its stamp


@dataclass(frozen=True)
class Entry:
    """One bent weight: where it goes in a view, what it was computed from, and the result."""

    name: str
    slots: tuple[Slot, ...]
    checks: tuple[Check, ...]
    bent: torch.Tensor
    trainables: tuple[tuple[Trainable, int], ...] = ()  # the trainables it read and their stamps
    graph: bool = False  # computed with gradients to its trainables: good for one call

    def current(self) -> bool:
        """True while the model still holds the tensors it was computed from, unmodified (and, for a weight
        bent by trainables, while they are unchanged and the call needs gradients through them no more than
        it was computed with)."""
        for owner, store, key, tensor, stamp in self.checks:
            if owner.__dict__[store].get(key) is not tensor or _stamp(tensor) != stamp:
                return False
        if self.trainables:
            if self.graph or any(t.stamp() != stamp or t.needs_graph() for t, stamp in self.trainables):
                return False
        return True


class BentWeights:
    """The bendable tensors of one module, by name, and a cache of their bent versions."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self._cache: dict[str, tuple[tuple, Entry]] = {}
        self._slots: dict[str, tuple[Slot, ...]] = {}
        self._effective: dict[str, Effective] | None = None

    @property
    def effective(self) -> dict[str, Effective]:
        """The effective weights of normalised layers, by name (see `torchbend.runtime.effective`)."""
        if self._effective is None:
            self._effective = effective_weights(self.module)
        return self._effective

    def tensor(self, name: str) -> torch.Tensor:
        """The parameter, else the buffer, else the effective weight named `name`; for a weight that accelerate
        offloaded (on the meta device until its module runs), the real weight it loads."""
        effective = self.effective.get(name)
        if effective is not None:
            return effective.compute()
        tensor = self._own(name)
        if tensor.device.type == "meta":
            owner_path, _, key = name.rpartition(".")
            stored = offloaded(self.module.get_submodule(owner_path), key)
            if stored is not None:
                return stored
        return tensor

    def _own(self, name: str) -> torch.Tensor:
        try:
            return self.module.get_parameter(name)
        except AttributeError:
            return self.module.get_buffer(name)

    def forget_structure(self) -> None:
        """Forget where each tensor lives (after submodules were replaced)."""
        self._slots.clear()
        self._effective = None

    def _checks(self, name: str, slots: tuple[Slot, ...]) -> tuple[Check, ...]:
        effective = self.effective.get(name)
        if effective is None:
            owner, store, key = slots[0]
            tensor = owner.__dict__[store][key]
            if tensor.device.type == "meta" and offloaded(owner, key) is not None:
                return ()  # accelerate swaps the placeholder at each call; the stored weight does not change
            return ((owner, store, key, tensor, _stamp(tensor)),)
        checks: list[Check] = []
        for path in effective.inputs:
            prefix, _, key = path.rpartition(".")
            owner = effective.owner.get_submodule(prefix) if prefix else effective.owner
            tensor = owner._parameters[key]
            assert tensor is not None  # the inputs of an effective weight are parameters
            checks.append((owner, "_parameters", key, tensor, _stamp(tensor)))
        return tuple(checks)

    def slots(self, name: str) -> tuple[Slot, ...]:
        """Every (module, store, key) holding the tensor named `name` (several when tied)."""
        effective = self.effective.get(name)
        if effective is not None:
            return ((effective.owner, "effective", effective.attr),)
        slots = self._slots.get(name)
        if slots is not None:
            owner, store, key = slots[0]
            if owner.__dict__[store].get(key) is not None:
                return slots
        slots = self._slots[name] = self._find_slots(name)
        return slots

    def _find_slots(self, name: str) -> tuple[Slot, ...]:
        target = self._own(name)
        store = "_parameters" if isinstance(target, nn.Parameter) else "_buffers"
        found: list[Slot] = []
        for owner in self.module.modules():
            for key, t in owner.__dict__[store].items():
                if t is target and not any(s[0] is owner and s[2] == key for s in found):
                    found.append((owner, store, key))
        return tuple(found)

    def aliases(self, name: str) -> list[str]:
        """Every state-dict name of the tensor named `name`."""
        target = self._own(name)
        named: list[tuple[str, torch.Tensor]] = list(self.module.named_parameters(remove_duplicate=False))
        named += list(self.module.named_buffers(remove_duplicate=False))
        return [n for n, t in named if t is target]

    def compute(
        self, plan: Mapping[str, Sequence[Step]], bases: dict[str, torch.Tensor] | None = None, cache: bool = True
    ) -> dict[str, Entry]:
        """Each weight of `plan` bent through its steps, in order; cached results are reused.

        A weight is bent from `bases[name]` when given (a weight version), else from the
        module's own tensor. Live parameters are read as they are now (call it inside
        `frozen_values` for a snapshot). Raises `BendingError` naming the weight and callback.
        With ``cache=False`` the cache is neither read nor written (one-off values).
        """
        bases = bases or {}
        if cache:
            for name in list(self._cache):
                if name not in plan:
                    del self._cache[name]
        entries = {}
        for name, steps in plan.items():
            slots = self.slots(name)
            checks = self._checks(name, slots)
            learned = tuple((t, t.stamp()) for cb, _ in steps for t in cb.trainables())
            graph = any(t.needs_graph() for t, _ in learned)
            key = (
                tuple(steps),
                tuple(p.value for cb, _ in steps for p in cb.live_parameters()),
                checks,
                bases.get(name),
                tuple(stamp for _, stamp in learned),
            )
            hit = self._cache.get(name) if cache and not graph else None
            if hit is not None and _same_key(hit[0], key):
                entries[name] = hit[1]
                continue
            if name not in self.effective and checks:
                original = checks[0][3]
                if any(slot[0].__dict__[slot[1]].get(slot[2]) is not original for slot in slots):
                    slots = self._slots[name] = self._find_slots(name)  # a tied weight was untied or replaced
            source = bases[name] if name in bases else self.tensor(name)
            bent = bend_tensor(name, source, steps, graph)
            if (
                not graph
                and not isinstance(bent, nn.Parameter)
                and name not in self.effective
                and isinstance(self._own(name), nn.Parameter)
            ):
                bent = nn.Parameter(bent, requires_grad=False)  # where the module holds a parameter
            entry = Entry(name, slots, checks, bent, learned, graph)
            if cache and not graph:
                self._cache[name] = (key, entry)
            entries[name] = entry
        return entries


def offloaded(owner: nn.Module, key: str) -> torch.Tensor | None:
    """The weight accelerate keeps for `owner.<key>` while the module holds a placeholder, if any."""
    hook = owner.__dict__.get("_hf_hook")
    for h in [hook, *getattr(hook, "hooks", ())]:
        weights = getattr(h, "weights_map", None)
        if weights is not None and getattr(h, "offload", False):
            try:
                return weights[key]
            except KeyError:
                return None
    return None


def _same_key(a: tuple, b: tuple) -> bool:
    (steps_a, values_a, checks_a, source_a, learned_a), (steps_b, values_b, checks_b, source_b, learned_b) = a, b
    return (
        len(steps_a) == len(steps_b)
        and all(x[0] is y[0] and x[1] is y[1] for x, y in zip(steps_a, steps_b))
        and values_a == values_b
        and source_a is source_b
        and learned_a == learned_b
        and len(checks_a) == len(checks_b)
        and all(x[3] is y[3] and x[4] == y[4] for x, y in zip(checks_a, checks_b))
    )


def bend_tensor(name: str, original: torch.Tensor, steps: Sequence[Step], graph: bool = False) -> torch.Tensor:
    """`original` through each callback of `steps`, as a new tensor of the same shape and dtype (with
    ``graph=True``, keeping the graph to the trainables the callbacks read; never to `original`)."""
    with torch.set_grad_enabled(graph):
        x = original.detach().clone()  # a callback working in place cannot reach the model
        for cb, state in steps:
            x = cb.forward(x, state)
            if not isinstance(x, torch.Tensor) or x.shape != original.shape:
                got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise BendingError(
                    f"{type(cb).__name__} turned {name} of shape {tuple(original.shape)} into {got}; "
                    "a weight bend must keep the shape"
                )
        if x.is_floating_point() and not original.is_floating_point() and original.dtype != torch.bool:
            raise BendingError(
                f"{type(cb).__name__} turned {name}, a tensor of {original.dtype}, into floating-point "
                "values that would be truncated back: bend integer tensors with callbacks that keep "
                "integers (Mask, Permute), or not at all"
            )
    bent = x.to(original.dtype)
    if graph:
        return bent
    if isinstance(original, nn.Parameter) or original.requires_grad:
        bent = nn.Parameter(bent, requires_grad=False)
    return bent
