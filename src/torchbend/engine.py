"""The engine: one owner for everything a bended module knows and changes, safe under threads.

    >>> engine = Engine(vae)
    >>> engine.trace("decode", (), {"z": z})
    >>> bend = engine.add_bend(tb.Scale(2), engine.resolve_targets(["decoder.net.convt0.weight"]))
    >>> out = engine.call("decode", (z,), {})          # runs on a snapshot; `vae` is never written
    >>> bend.remove()

State (records, bends, the version counter) changes only under `lock`, and every change
bumps `version`. A call takes the current `Snapshot`: the parameter values, the bent
weights computed from them, the view a call runs against (a copy-on-write view of a
Python module holding those weights; the weights a TorchScript graph is given), and the
activation bends of each method, all taken together under the lock. What depends on the
kind of model (recording, views, programs, exports) is the `MethodBackend`'s
(`torchbend.backend`); everything here is written once for every kind. The call
itself runs without the lock, on that snapshot only, so any number of threads can call
while others change parameters or bends: a change takes effect from the next call, and
no call sees half of one. A parameter change is never lost: it bumps the version, so
the next call builds a new snapshot even if a build was under way.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from . import per_example
from .backend import MethodBackend, backend_for
from .bending.callback import BendingCallback
from .bending.parameter import BendingParameter, frozen_values
from .bending.target import Target
from .effective import normalised_by
from .errors import BendingError, SpecializationError, UnknownNameError
from .naming import pattern_matches, scoped_matches, split_method, unknown_name
from .tracing.program import ActivationBend, number_inputs
from .tracing.record import MethodRecord
from .tracing.tracer import warn_at_user_code
from .versions import ORIGINAL, Interpolation, Versions
from .weights import Entry

Steps = list[tuple[BendingCallback, Any]]


class Bend:
    """One `bend` call: a callback on its resolved targets. A context manager that undoes it.

        >>> with bended.bend(tb.Scale(2), "decoder.net.convt0.weight") as b:
        ...     [t.name for t in b.targets]
        ['decoder.net.convt0.weight']
    """

    def __init__(self, engine: Engine, callback: BendingCallback, targets: list[Target],
                 states: dict[str, Any]) -> None:
        self._engine = engine
        self.callback = callback
        self.targets = targets
        self.states = states  # target.qualified -> the callback's state for it
        self.parameters = list(callback.live_parameters())

    @property
    def weights(self) -> list[str]:
        return [t.name for t in self.targets if t.kind == "weight"]

    def activations(self, fn: str) -> list[str]:
        return [t.name for t in self.targets if t.kind == "activation" and t.method == fn]

    def remove(self) -> None:
        """Undo this bend (no-op if already removed); calls already running finish with it."""
        self._engine.remove_bends([self])

    def __enter__(self) -> Bend:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"Bend({self.callback!r} on {', '.join(t.qualified for t in self.targets)})"


class Snapshot:
    """What one call runs on: parameter values, bent weights, a view holding them, activation bends."""

    def __init__(self, engine: Engine, version: int, values: dict[BendingParameter, Any], entries: dict[str, Entry],
                 steps: dict[str, dict[str, Steps]], bases: dict[str, torch.Tensor] | None = None) -> None:
        self.engine = engine
        self.version = version
        self.values = values
        self.entries = entries
        self.steps = steps  # method -> activation -> [(callback, state)]
        self.sources = dict(bases or {})  # the weights a version mix gives, before bends
        self.bases = {name: nn.Parameter(t, requires_grad=False) for name, t in self.sources.items()
                      if name not in entries}  # weights of a version, not bent further
        self.view = engine.backend.view(self.bases, entries)  # what calls run against (see `MethodBackend`)
        self._checks = list(entries.values())
        self._runners: dict[Any, Any] = {}

    def current(self) -> bool:
        """True while nothing this snapshot was built from has changed."""
        if self.version != self.engine.version:
            return False
        for entry in self._checks:
            if not entry.current():
                return False
        return True

    def runner(self, fn: str, **options: Any) -> Any:
        """What runs `fn` (or part of it, with `options` as in `Program`) on this snapshot."""
        key = (fn, *sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items())) if options else fn
        runner = self._runners.get(key)
        if runner is None:
            record = self.engine.records.get(fn)
            if record is None:
                runner = self.engine.backend.untraced(self.view, fn)
            else:
                runner = self.engine.program(fn, self.steps.get(fn, {}), **options).bind(self.view)
            self._runners[key] = runner
        return runner


class Engine:
    """The state of one bended module: records, bends, bent weights, programs, and the lock around changes."""

    def __init__(self, module: nn.Module, buffers: Sequence[str] = (), backend: MethodBackend | None = None
                 ) -> None:
        self.module = module
        self.backend = backend if backend is not None else backend_for(module)
        self.lock = threading.RLock()
        self.buffer_names = list(buffers)
        self.weights = self.backend.weights
        self.versions = Versions(module)
        self.records: dict[str, MethodRecord] = {}
        self.bends: list[Bend] = []
        self.retraces: dict[str, int] = {}
        self.version = 0
        self._snapshot: Snapshot | None = None
        self._programs: dict[tuple, Any] = {}
        self._subscribed: dict[int, BendingParameter] = {}

    # --- names ------------------------------------------------------------------------------
    @property
    def weight_names(self) -> list[str]:
        return [name for name, _ in self.module.named_parameters()]

    def record(self, fn: str) -> MethodRecord:
        record = self.records.get(fn)
        if record is None:
            traced = ", ".join(self.records) or "none yet"
            raise BendingError(f"method {fn!r} is not traced (traced: {traced}); call bended.trace({fn!r}, ...) first")
        return record

    def split_method(self, pattern: str) -> tuple[str | None, str]:
        """``"decode:conv"`` -> ``("decode", "conv")`` when `decode` is a method of the model; else the pattern is
        a name as a whole (a TorchScript value ``"encoder:input.1"``)."""
        method, body = split_method(pattern)
        if method is not None and method not in self.records and not self.backend.has_method(method):
            return None, pattern
        return method, body

    def resolve_activations(self, patterns: Sequence[str], fn: str) -> list[str]:
        bodies = []
        for pattern in patterns:
            method, body = self.split_method(pattern)
            if method is not None and method != fn:
                raise BendingError(f"pattern {pattern!r} names method {method!r}, but fn={fn!r}")
            bodies.append(body)
        return self.record(fn).resolve(bodies)

    def resolve_targets(self, patterns: Sequence[str], fn: str | None = None) -> list[Target]:
        """The weights and activations matching `patterns`, in parameter then graph order.

        Weights include the opted-in buffers and the effective weights of normalised layers
        (`torchbend.effective`), matched by exact name only.
        """
        effective = [n for n in self.weights.effective if n not in self.weight_names]
        weights = self.weight_names + self.buffer_names
        methods = [fn] if fn is not None else list(self.records)
        found_weights: set[str] = set()
        found_acts: dict[str, set[str]] = {m: set() for m in self.records}
        for pattern in patterns:
            if not isinstance(pattern, str):
                raise TypeError(f"bend targets are names or patterns, got {type(pattern).__name__}")
            method, body = self.split_method(pattern)
            if method is not None:
                if fn is not None and method != fn:
                    raise BendingError(f"target {pattern!r} names method {method!r}, but fn={fn!r}")
                found_acts[method].update(self.record(method).resolve([body]))
                continue
            w_hits = [pattern] if pattern in effective else pattern_matches(pattern, weights)
            exact_weight = w_hits == [pattern]
            a_hits: list[str] = []
            for m in methods:
                if exact_weight:
                    break
                acts = self.records[m].activations
                matched = scoped_matches(pattern, acts) if "@" in pattern else pattern_matches(pattern, list(acts))
                hits = [a for a in matched if not (acts[a].op == "get_attr" and acts[a].target in w_hits)]
                found_acts[m].update(hits)
                a_hits += [f"{m}:{a}" for a in hits]
            if not w_hits and not a_hits:
                self._no_target(pattern, weights, methods)
            if w_hits and a_hits:
                warn_at_user_code(f"torchbend: {pattern!r} matches weights ({', '.join(w_hits[:3])}"
                                  f"{', ...' if len(w_hits) > 3 else ''}) and activations ({', '.join(a_hits[:3])}"
                                  f"{', ...' if len(a_hits) > 3 else ''}); both are bent. Use a pattern ending in "
                                  "'weight'/'bias' for weights only, or 'method:pattern' for activations only")
            found_weights.update(w_hits)
        normalised = {n: e for n, e in normalised_by(self.module).items() if n in found_weights}
        if normalised:
            undone = "; ".join(f"{n} is normalised into {e}, which undoes most bends of it"
                               for n, e in normalised.items())
            example = next(iter(normalised.values()))
            warn_at_user_code(f"torchbend: {undone}; bend the effective weight by its name instead (e.g. {example!r})")
        targets = []
        for name in weights + effective:
            if name in found_weights:
                p = self.weights.tensor(name)
                targets.append(Target(name, "weight", tuple(p.shape), p.dtype, p.device))
        for m, names in found_acts.items():
            for info in self.records[m].activations.values():
                if info.name in names:
                    if not info.is_tensor:
                        raise BendingError(f"activation {m}:{info.name} is a {info.type}, not a tensor; "
                                           "bend one of the tensors taken from it instead")
                    assert info.shape is not None and info.dtype is not None and info.device is not None  # a tensor
                    targets.append(Target(info.name, "activation", info.shape, info.dtype, info.device, method=m))
        return targets

    def _no_target(self, pattern: str, weights: list[str], methods: list[str]) -> None:
        for m in methods:
            if pattern in getattr(self.records[m], "nested", ()):  # a TorchScript value inside control flow
                self.records[m].resolve([pattern])
        buffers = [n for n, _ in self.module.named_buffers() if n not in self.buffer_names]
        if pattern_matches(pattern, buffers):
            raise UnknownNameError(f"{pattern!r} names a buffer, and buffers are bent only when opted in: "
                                   f"tb.BendedModule(model, buffers=[{pattern!r}])")
        names = weights + [a for m in methods for a in self.records[m].activation_names()]
        raise unknown_name(pattern, names, "weight or activation")

    # --- tracing --------------------------------------------------------------------------------
    def trace(self, fn: str, args: tuple, kwargs: dict, leaves: Sequence[str] = (), retrace: bool = False,
              runtime: dict[str, Any] | None = None) -> MethodRecord:
        """Record `fn` on these inputs, as the module currently runs bent, and make it the method's record."""
        self._no_per_example_argument(fn)
        snapshot = self.snapshot()
        runtime = runtime or {}
        activation_bends = {node: ActivationBend(steps, node) for node, steps in snapshot.steps.get(fn, {}).items()}
        number_inputs(activation_bends)
        bends = {node: _bent_value(bend, runtime) for node, bend in activation_bends.items()}
        with frozen_values(snapshot.values):
            record = self.backend.record(fn, args, kwargs, leaves, retrace, bends, snapshot.view)
        with self.lock:
            self.records[fn] = record
            self._retarget(fn)
            self.backend.recorded()
            self.version += 1
        return record

    def _retarget(self, fn: str) -> None:
        """After re-tracing `fn`, re-attach its activation bends to the new nodes (under the lock)."""
        acts = self.records[fn].activations
        for bend in list(self.bends):
            kept = []
            for t in bend.targets:
                if t.kind != "activation" or t.method != fn:
                    kept.append(t)
                    continue
                info = acts.get(t.name)
                if info is None or not info.is_tensor:
                    warnings.warn(f"re-tracing {fn} dropped the bend of {t.qualified}: the activation no longer "
                                  "exists", stacklevel=4)
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
        self._prune_subscriptions()

    def retrace(self, fn: str, args: tuple, kwargs: dict, runtime: dict[str, Any]) -> None:
        record = self.record(fn)
        self.retraces[fn] = self.retraces.get(fn, 0) + 1
        self.trace(fn, args, kwargs, record.leaves, retrace=True, runtime=runtime)

    # --- bends ----------------------------------------------------------------------------------
    def add_bend(self, callback: BendingCallback, targets: list[Target]) -> Bend:
        """Attach `callback` to `targets`; it is applied once here, so a bend that cannot work fails now."""
        for target in targets:
            if not callback.can_bend(target.kind):
                raise BendingError(f"{type(callback).__name__} cannot bend {target.kind}s such as {target.qualified}")
        states = {}
        for target in targets:
            try:
                states[target.qualified] = callback.setup(target)
            except Exception as error:
                raise BendingError(f"{callback!r} cannot bend {target.qualified}: {error}") from error
        bend = Bend(self, callback, targets, states)
        if not getattr(callback, "side_effects", False):
            for target in targets:
                if target.kind == "activation":
                    record = self.records.get(target.method) if target.method is not None else None
                    _try_on(callback, states[target.qualified], target, _consumers(record, target.name))
        with self.lock:
            in_use = {p.name: p for b in self.bends for p in b.parameters}
            for p in bend.parameters:
                if in_use.get(p.name, p) is not p:
                    raise BendingError(f"another bending parameter named {p.name!r} is in use; give this one "
                                       "another name")
            self.bends.append(bend)
            self._subscribe(bend.parameters)
            self.version += 1
            if bend.weights:
                try:
                    self._build()
                except Exception as error:
                    self.bends.remove(bend)
                    self._prune_subscriptions()
                    self.version += 1
                    cause = error if isinstance(error, BendingError) else f"{type(error).__name__}: {error}"
                    raise BendingError(f"{callback!r} could not bend {', '.join(bend.weights)}: {cause}") from error
        return bend

    def remove_bends(self, bends: Sequence[Bend]) -> None:
        with self.lock:
            for bend in bends:
                if bend in self.bends:
                    self.bends.remove(bend)
            self._prune_subscriptions()
            self.version += 1

    def _live_parameters(self) -> list[BendingParameter]:
        return [p for bend in self.bends for p in bend.parameters] + self.versions.parameters()

    def _subscribe(self, params: Sequence[BendingParameter]) -> None:
        for p in params:
            if id(p) not in self._subscribed:
                p.subscribe(self._on_parameter_change)
                self._subscribed[id(p)] = p

    def set_mix(self, mix: dict[str, Any] | None, interpolation: Interpolation | None = None) -> None:
        """Make `mix` (version name -> weight) the base of every weight; None: the module's own weights."""
        with self.lock:
            previous = (self.versions.mix, self.versions.interpolation)
            self.versions.mix = None if mix is None else self.versions.check_mix(mix)
            if interpolation is not None:
                self.versions.interpolation = interpolation
            self._subscribe(self.versions.parameters())
            self.version += 1
            try:
                self._build()
            except Exception:
                self.versions.mix, self.versions.interpolation = previous
                self.version += 1
                raise
            finally:
                self._prune_subscriptions()

    def write(self, name: str | None) -> str:
        """Bake the weights as bent now into version `name` (default: the one in use), clear the weight bends,
        and use that version."""
        with self.lock:
            mix = self.versions.mix or {}
            if name is None:
                if len(mix) != 1 or next(iter(mix)) == ORIGINAL:
                    raise BendingError("write() without a name overwrites the version in use, and none is: the "
                                       "module's own weights are never written; give a name: write('bent')")
                name = next(iter(mix))
            snapshot = self._build()
            weights = {**{n: t.detach() for n, t in snapshot.bases.items()},
                       **{n: e.bent.detach() for n, e in snapshot.entries.items()}}
            self.versions.create(name, weights, strict=False)
            for bend in list(self.bends):
                bend.targets = [t for t in bend.targets if t.kind != "weight"]
                if not bend.targets:
                    self.bends.remove(bend)
            self.versions.mix = {name: 1.0}
            self._prune_subscriptions()
            self.version += 1
            return name

    def _prune_subscriptions(self) -> None:
        in_use = {id(p) for p in self._live_parameters()}
        for key in list(self._subscribed):
            if key not in in_use:
                self._subscribed.pop(key).unsubscribe(self._on_parameter_change)

    def _on_parameter_change(self, param: BendingParameter) -> None:
        self.version += 1

    @property
    def parameters(self) -> dict[str, BendingParameter]:
        return {p.name: p for p in self._live_parameters()}

    def weight_plan(self) -> dict[str, Steps]:
        """Each bent weight and its (callback, state) steps, in the order the bends were made."""
        plan: dict[str, Steps] = {}
        for bend in self.bends:
            for name in bend.weights:
                plan.setdefault(name, []).append((bend.callback, bend.states[name]))
        return plan

    def activation_steps(self, fn: str) -> dict[str, Steps]:
        """Each bent activation of `fn` and its (callback, state) steps, in graph order."""
        steps: dict[str, Steps] = {}
        for bend in self.bends:
            for node in bend.activations(fn):
                steps.setdefault(node, []).append((bend.callback, bend.states[f"{fn}:{node}"]))
        record = self.records.get(fn)
        order = record.activations if record is not None else steps
        return {name: steps[name] for name in order if name in steps}

    def activation_bends(self, fn: str) -> dict[str, ActivationBend]:
        return {node: ActivationBend(steps, node) for node, steps in self.activation_steps(fn).items()}

    # --- what calls run -------------------------------------------------------------------------
    def program(self, fn: str, steps: dict[str, Steps], **options: Any) -> Any:
        """The program of `fn` with these activation bends (compiled once, then cached)."""
        key = (fn, self.record(fn), _structure(steps),
               *sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))
        program = self._programs.get(key)
        if program is None:
            with self.lock:
                program = self._programs.get(key)
                if program is None:
                    bends = {node: ActivationBend(s, node) for node, s in steps.items()}
                    program = self.backend.program(self.record(fn), bends, **options)
                    self._programs[key] = program
        return program

    def snapshot(self) -> Snapshot:
        """The snapshot a call starting now runs on (built when something changed)."""
        snapshot = self._snapshot
        if snapshot is None or not snapshot.current():
            snapshot = self._build()
        return snapshot

    def _build(self) -> Snapshot:
        with self.lock:
            snapshot = self._snapshot
            if snapshot is not None and snapshot.current():
                return snapshot
            version = self.version  # read before the values: a change after it forces the next build
            values = {p: p._value for p in self._live_parameters()}
            with frozen_values(values):
                bases = self.versions.bases()
                entries = self.weights.compute(self.weight_plan(), bases)
            steps = {fn: self.activation_steps(fn) for fn in self.records}
            snapshot = Snapshot(self, version, values, entries, steps, bases)
            live = {(fn, self.records[fn], _structure(f)) for fn, f in steps.items()}
            self._programs = {k: v for k, v in self._programs.items() if k[:3] in live}
            self._snapshot = snapshot
            return snapshot

    def call(self, fn: str, args: tuple, kwargs: dict) -> Any:
        """Run method `fn` bent: on the current snapshot, re-tracing once when it was traced with retrace=True
        and this call takes another path. A ``per_example`` keyword: see `call_per_example`."""
        if kwargs and "per_example" in kwargs:
            values = kwargs.pop("per_example")
            if values is not None:
                return self.call_per_example(fn, args, kwargs, values)
        snapshot = self._snapshot  # the lines below are `snapshot().runner(fn)`, inlined: they run at every call
        if snapshot is None or not snapshot.current():
            snapshot = self._build()
        runner = snapshot._runners.get(fn) or snapshot.runner(fn)
        runtime = {k: kwargs.pop(k) for k in runner.runtime_inputs if k in kwargs} if runner.runtime_inputs else {}
        with frozen_values(snapshot.values):
            try:
                return runner.run(args, kwargs, runtime)
            except SpecializationError:
                record = self.records.get(fn)
                if record is None or not record.retrace:
                    raise
        self.retrace(fn, args, kwargs, runtime)
        snapshot = self.snapshot()
        with frozen_values(snapshot.values):
            return snapshot.runner(fn).run(args, kwargs, runtime)

    def call_per_example(self, fn: str, args: tuple, kwargs: dict, values: Any) -> Any:
        """Run `fn` bent with one value of some parameters per batch item (`torchbend.per_example`)."""
        self._no_per_example_argument(fn)
        with self.lock:
            snapshot = self._build()
            plan = self.weight_plan()
        groups = per_example.Groups(per_example.parse(values, {p.name: p for p in snapshot.values}),
                                    snapshot.values)
        per_example.check_inputs(args, kwargs, groups.size)
        record = self.records.get(fn)
        varying = {name: steps for name, steps in plan.items()
                   if any(per_example.depends(cb, groups.params) for cb, _ in steps)}
        view = None
        if record is not None and record.grouped_bends and not groups.params & set(self.versions.parameters()):
            view = self.backend.per_example_view(self, snapshot, groups, varying, record) if varying \
                else snapshot.view
        if view is None:
            return self._per_group_calls(fn, args, kwargs, groups, snapshot)
        program = self.program(fn, snapshot.steps.get(fn, {}))
        runner = program.bind(view, per_example.grouped_bends(program.bends, groups))
        runtime = {k: kwargs.pop(k) for k in runner.runtime_inputs if k in kwargs} if runner.runtime_inputs else {}
        with frozen_values(snapshot.values):
            return runner.run(args, kwargs, runtime)

    def _per_group_calls(self, fn: str, args: tuple, kwargs: dict, groups: per_example.Groups,
                         snapshot: Snapshot) -> Any:
        """`fn` called once per group, on the group's rows and with its values; the outputs joined."""
        outputs = []
        for rows, values in zip(groups.members, groups.values):
            group_args, group_kwargs = per_example.split((args, kwargs), rows, groups.size)
            outputs.append(self._call_with(fn, group_args, group_kwargs, values, snapshot))
        return per_example.join(outputs, groups, f"{fn}'s output")

    def call_with(self, fn: str, args: tuple, kwargs: dict, values: dict[str, Any]) -> Any:
        """Run `fn` bent with some parameters (by name) at other values for this call only; nothing is set."""
        snapshot = self.snapshot()
        params = {p.name: p for p in snapshot.values}
        checked = per_example.parse({name: [v] for name, v in values.items()}, params)
        return self._call_with(fn, args, kwargs, {**snapshot.values, **{p: v[0] for p, v in checked.items()}},
                               snapshot)

    def weights_at(self, plan: dict[str, Steps], values: dict[BendingParameter, Any]
                    ) -> tuple[dict[str, torch.Tensor], dict[str, Entry]]:
        """The version bases and the bent weights of `plan` at these parameter values (one-off: not cached)."""
        with self.lock, frozen_values(values):
            bases = self.versions.bases()
            return bases, self.weights.compute(plan, bases, cache=False)

    def _call_with(self, fn: str, args: tuple, kwargs: dict, values: dict[BendingParameter, Any],
                   snapshot: Snapshot) -> Any:
        bases, entries = self.weights_at(self.weight_plan(), values)
        runner = Snapshot(self, snapshot.version, values, entries, snapshot.steps, bases).runner(fn)
        kwargs = dict(kwargs)
        runtime = {k: kwargs.pop(k) for k in runner.runtime_inputs if k in kwargs}
        with frozen_values(values):
            return runner.run(args, kwargs, runtime)

    def _no_per_example_argument(self, fn: str) -> None:
        """Refuse to bend a method that takes its own ``per_example`` argument (the keyword is ours)."""
        if "per_example" in (self.backend.arguments(fn) or ()):
            raise BendingError(f"{self.backend.model_name}.{fn} has its own 'per_example' argument, which torchbend "
                               "takes for per-example parameter values on every bent method; rename the argument, "
                               "or call the model's own method unbent")

    def moved(self, device: torch.device | None, dtype: torch.dtype | None) -> None:
        """After the module moved or was cast: move what the records hold, and rebuild what calls run."""
        with self.lock:
            for record in self.records.values():
                record.to(device, dtype)
            self.backend.moved(device, dtype)
            self._programs.clear()
            self.version += 1




def _structure(steps: dict[str, Steps]) -> tuple:
    """What a program is compiled from: which activations are bent, by which callbacks and states."""
    return tuple((node, tuple((id(cb), id(state)) for cb, state in s)) for node, s in steps.items())


def _bent_value(bend: ActivationBend, runtime: dict[str, Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        return bend(value, **{k: runtime[k] for k in bend.inputs if k in runtime})

    return apply


def _try_on(callback: BendingCallback, state: Any, target: Target, consumers: Sequence[str] = ()) -> None:
    """Apply `callback` once to zeros shaped like `target`, so a bend that cannot work fails at bend time: it must
    return a tensor of the activation's shape and dtype, which is what the graph's `consumers` of it were traced
    with."""
    x = torch.zeros(target.shape, dtype=target.dtype, device=target.device)
    try:
        with torch.no_grad():
            out = callback.forward(x, state)
    except Exception as error:
        raise BendingError(f"{callback!r} fails on {target.qualified} (shape {tuple(target.shape)}): "
                           f"{type(error).__name__}: {error}") from error
    if not isinstance(out, torch.Tensor):
        raise BendingError(f"{callback!r} returned {type(out).__name__} for {target.qualified}; a callback returns "
                           "a tensor")
    if tuple(out.shape) != tuple(target.shape) or out.dtype != target.dtype:
        used_by = f"used by {', '.join(consumers)}" if consumers else "the method's output"
        raise BendingError(
            f"{callback!r} turns {target.qualified} ({str(target.dtype).replace('torch.', '')}, shape "
            f"{tuple(target.shape)}) into {str(out.dtype).replace('torch.', '')}, shape {tuple(out.shape)}; the "
            f"graph was traced with it as it is ({used_by}). A bend keeps an activation's shape and dtype: bend a "
            "floating-point activation next to it, or return the same dtype from the callback")


def _consumers(record: MethodRecord | None, name: str) -> list[str]:
    """The nodes of a traced graph that read activation `name` (none known for other records)."""
    graph = getattr(record, "graph", None)
    if not isinstance(graph, torch.fx.Graph):
        return []
    node = next((n for n in graph.nodes if n.name == name), None)
    return [] if node is None else [user.name for user in node.users if not user.meta.get("tb_guard")]
