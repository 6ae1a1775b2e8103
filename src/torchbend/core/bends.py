"""The bend set: the bends made on one model, their plans, and the live parameters they subscribe to.

    >>> bends = BendSet(on_change=lambda param: None)
    >>> targets = bended.engine.resolve_targets(["decoder.net.convt0.weight"])
    >>> bend = bends.prepare(tb.Scale(2), targets, records={}, remove=bends.remove)
    >>> bends.add(bend)
    >>> list(bends.weight_plan())
    ['decoder.net.convt0.weight']

A `BendSet` changes only under its engine's lock (the engine calls it so); `prepare` tries a
callback on its targets first, so a bend that cannot work fails before anything changes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..bending.callback import BendingCallback
from ..bending.parameter import BendingParameter
from ..bending.target import Target
from ..errors import BendingError
from ..runtime.program import ActivationBend
from ..tracing.record import MethodRecord

Steps = list[tuple[BendingCallback, Any]]


class Bend:
    """One `bend` call: a callback on its resolved targets. A context manager that undoes it.

    >>> with bended.bend(tb.Scale(2), "decoder.net.convt0.weight") as b:
    ...     [t.name for t in b.targets]
    ['decoder.net.convt0.weight']
    """

    def __init__(
        self,
        callback: BendingCallback,
        targets: list[Target],
        states: dict[str, Any],
        remove: Callable[[Sequence[Bend]], None],
    ) -> None:
        self.callback = callback
        self.targets = targets
        self.states = states  # target.qualified -> the callback's state for it
        self.parameters = list(callback.live_parameters())
        self._remove = remove

    @property
    def weights(self) -> list[str]:
        return [t.name for t in self.targets if t.kind == "weight"]

    def activations(self, fn: str) -> list[str]:
        return [t.name for t in self.targets if t.kind == "activation" and t.method == fn]

    def remove(self) -> None:
        """Undo this bend (no-op if already removed); calls already running finish with it."""
        self._remove([self])

    def __enter__(self) -> Bend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"Bend({self.callback!r} on {', '.join(t.qualified for t in self.targets)})"


class BendSet:
    """The bends of one model, in the order made, and the subscriptions to their live parameters."""

    def __init__(self, on_change: Callable[[BendingParameter], None]) -> None:
        self.bends: list[Bend] = []
        self._on_change = on_change
        self._subscribed: dict[int, BendingParameter] = {}

    def __iter__(self) -> Any:
        return iter(list(self.bends))

    @staticmethod
    def prepare(
        callback: BendingCallback,
        targets: list[Target],
        records: dict[str, MethodRecord],
        remove: Callable[[Sequence[Bend]], None],
    ) -> Bend:
        """A bend of `callback` on `targets`, set up and tried once on each activation (nothing is added)."""
        for target in targets:
            if not callback.can_bend(target.kind):
                raise BendingError(f"{type(callback).__name__} cannot bend {target.kind}s such as {target.qualified}")
        states = {}
        for target in targets:
            try:
                states[target.qualified] = callback.setup(target)
            except Exception as error:
                raise BendingError(f"{callback!r} cannot bend {target.qualified}: {error}") from error
        if not getattr(callback, "side_effects", False):
            for target in targets:
                if target.kind == "activation":
                    record = records.get(target.method) if target.method is not None else None
                    try_on(callback, states[target.qualified], target, consumers(record, target.name))
        return Bend(callback, targets, states, remove)

    def add(self, bend: Bend) -> None:
        in_use = {p.name: p for b in self.bends for p in b.parameters}
        for p in bend.parameters:
            if in_use.get(p.name, p) is not p:
                raise BendingError(f"another bending parameter named {p.name!r} is in use; give this one another name")
        self.bends.append(bend)
        self.subscribe(bend.parameters)

    def remove(self, bends: Sequence[Bend], extra: Sequence[BendingParameter] = ()) -> None:
        for bend in bends:
            if bend in self.bends:
                self.bends.remove(bend)
        self.prune(extra)

    def retarget(self, fn: str, record: MethodRecord, extra: Sequence[BendingParameter] = ()) -> None:
        """After re-tracing `fn`, re-attach its activation bends to the new record's values."""
        acts = record.activations
        for bend in list(self.bends):
            kept = []
            for t in bend.targets:
                if t.kind != "activation" or t.method != fn:
                    kept.append(t)
                    continue
                info = acts.get(t.name)
                if info is None or not info.is_tensor:
                    warnings.warn(
                        f"re-tracing {fn} dropped the bend of {t.qualified}: the activation no longer exists",
                        stacklevel=5,
                    )
                    bend.states.pop(t.qualified, None)
                    continue
                assert info.shape is not None and info.dtype is not None and info.device is not None  # a tensor
                new = Target(t.name, "activation", info.shape, info.dtype, info.device, method=fn)
                if new != t:
                    bend.states[t.qualified] = bend.callback.setup(new)
                kept.append(new)
            bend.targets = kept
            if not kept:
                self.bends.remove(bend)
        self.prune(extra)

    def drop_weight_bends(self, extra: Sequence[BendingParameter] = ()) -> None:
        """Forget every weight target (their values were written into a version)."""
        for bend in list(self.bends):
            bend.targets = [t for t in bend.targets if t.kind != "weight"]
            if not bend.targets:
                self.bends.remove(bend)
        self.prune(extra)

    def parameters(self) -> list[BendingParameter]:
        return [p for bend in self.bends for p in bend.parameters]

    def subscribe(self, params: Sequence[BendingParameter]) -> None:
        for p in params:
            if id(p) not in self._subscribed:
                p.subscribe(self._on_change)
                self._subscribed[id(p)] = p

    def prune(self, extra: Sequence[BendingParameter] = ()) -> None:
        """Unsubscribe from parameters no bend (nor `extra`, e.g. a version mix) uses any more."""
        in_use = {id(p) for p in [*self.parameters(), *extra]}
        for key in list(self._subscribed):
            if key not in in_use:
                self._subscribed.pop(key).unsubscribe(self._on_change)

    def weight_plan(self) -> dict[str, Steps]:
        """Each bent weight and its (callback, state) steps, in the order the bends were made."""
        plan: dict[str, Steps] = {}
        for bend in self.bends:
            for name in bend.weights:
                plan.setdefault(name, []).append((bend.callback, bend.states[name]))
        return plan

    def activation_steps(self, fn: str, record: MethodRecord | None) -> dict[str, Steps]:
        """Each bent activation of `fn` and its (callback, state) steps, in graph order."""
        steps: dict[str, Steps] = {}
        for bend in self.bends:
            for node in bend.activations(fn):
                steps.setdefault(node, []).append((bend.callback, bend.states[f"{fn}:{node}"]))
        order = record.activations if record is not None else steps
        return {name: steps[name] for name in order if name in steps}


def activation_bends(steps: dict[str, Steps]) -> dict[str, ActivationBend]:
    return {node: ActivationBend(s, node) for node, s in steps.items()}


def try_on(callback: BendingCallback, state: Any, target: Target, consumers: Sequence[str] = ()) -> None:
    """Apply `callback` once to zeros shaped like `target`, so a bend that cannot work fails at bend time: it must
    return a tensor of the activation's shape and dtype, which is what the graph's `consumers` of it were traced
    with."""
    x = torch.zeros(target.shape, dtype=target.dtype, device=target.device)
    try:
        with torch.no_grad():
            out = callback.forward(x, state)
    except Exception as error:
        raise BendingError(
            f"{callback!r} fails on {target.qualified} (shape {tuple(target.shape)}): {type(error).__name__}: {error}"
        ) from error
    if not isinstance(out, torch.Tensor):
        raise BendingError(
            f"{callback!r} returned {type(out).__name__} for {target.qualified}; a callback returns a tensor"
        )
    if tuple(out.shape) != tuple(target.shape) or out.dtype != target.dtype:
        used_by = f"used by {', '.join(consumers)}" if consumers else "the method's output"
        raise BendingError(
            f"{callback!r} turns {target.qualified} ({str(target.dtype).replace('torch.', '')}, shape "
            f"{tuple(target.shape)}) into {str(out.dtype).replace('torch.', '')}, shape {tuple(out.shape)}; the "
            f"graph was traced with it as it is ({used_by}). A bend keeps an activation's shape and dtype: bend a "
            "floating-point activation next to it, or return the same dtype from the callback"
        )


def consumers(record: MethodRecord | None, name: str) -> list[str]:
    """The nodes of a traced graph that read activation `name` (none known for other records)."""
    graph = getattr(record, "graph", None)
    if not isinstance(graph, torch.fx.Graph):
        return []
    node = next((n for n in graph.nodes if n.name == name), None)
    return [] if node is None else [user.name for user in node.users if not user.meta.get("tb_guard")]
