"""The engine: one owner for everything a bended module knows and changes, safe under threads.

    >>> engine = Engine(vae)
    >>> engine.trace("decode", (), {"z": z})
    >>> bend = engine.add_bend(tb.Scale(2), engine.resolve_targets(["decoder.net.convt0.weight"]))
    >>> from torchbend.core import calls
    >>> out = calls.call(engine, "decode", (z,), {})   # runs on a snapshot; `vae` is never written
    >>> bend.remove()

State (records, bends, versions) changes only under `lock`, and every change bumps the
`generation`. A call takes the current `Snapshot` (`torchbend.core.snapshot`), built under
the lock when something changed, and runs without the lock on it alone, so any number of
threads can call while others change parameters or bends: a change takes effect from the
next call, and no call sees half of one. A parameter change is never lost: it bumps the
generation, so the next call builds a new snapshot even if a build was under way. What
depends on the kind of model (recording, views, programs, exports) is the
`MethodBackend`'s (`torchbend.core.backend`); names are resolved by the `TargetResolver`, bends
kept by the `BendSet`, calls dispatched by `torchbend.core.calls`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..bending.callback import BendingCallback
from ..bending.parameter import BendingParameter, frozen_values
from ..bending.target import Target
from ..errors import BendingError
from ..runtime.program import ActivationBend, number_inputs
from ..runtime.versions import ORIGINAL, Interpolation, Versions
from ..runtime.weights import Entry
from ..tracing.record import MethodRecord
from .backend import MethodBackend, backend_for
from .bends import Bend, BendSet, Steps, activation_bends
from .snapshot import Generation, ProgramCache, Snapshot
from .targets import TargetResolver


class Engine:
    """The state of one bended module: records, bends, versions, snapshots, and the lock around changes."""

    def __init__(self, module: nn.Module, buffers: Sequence[str] = (), backend: MethodBackend | None = None) -> None:
        self.module = module
        self.backend = backend if backend is not None else backend_for(module)
        self.lock = threading.RLock()
        self.weights = self.backend.weights
        self.versions = Versions(module)
        self.records: dict[str, MethodRecord] = {}
        self.retraces: dict[str, int] = {}
        self.generation = Generation()
        self.names = TargetResolver(module, self.backend, buffers, self.records)
        self.bend_set = BendSet(on_change=self.generation.bump)
        self.programs = ProgramCache(self.backend)
        self._snapshot: Snapshot | None = None

    # --- names (see `TargetResolver`) ---------------------------------------------------------
    @property
    def buffer_names(self) -> list[str]:
        return self.names.buffer_names

    @property
    def weight_names(self) -> list[str]:
        return self.names.weight_names

    def record(self, fn: str) -> MethodRecord:
        return self.names.record(fn)

    def resolve_activations(self, patterns: Sequence[str], fn: str) -> list[str]:
        return self.names.activations(patterns, fn)

    def resolve_targets(self, patterns: Sequence[str], fn: str | None = None) -> list[Target]:
        return self.names.targets(patterns, fn)

    # --- tracing --------------------------------------------------------------------------------
    def trace(
        self,
        fn: str,
        args: tuple,
        kwargs: dict,
        leaves: Sequence[str] = (),
        retrace: bool = False,
        runtime: dict[str, Any] | None = None,
    ) -> MethodRecord:
        """Record `fn` on these inputs, as the module currently runs bent, and make it the method's record."""
        self.no_per_example_argument(fn)
        snapshot = self.snapshot()
        runtime = runtime or {}
        bends = {node: ActivationBend(steps, node) for node, steps in snapshot.steps.get(fn, {}).items()}
        number_inputs(bends)
        with frozen_values(snapshot.values):
            record = self.backend.record(
                fn,
                args,
                kwargs,
                leaves,
                retrace,
                {node: _bent_value(b, runtime) for node, b in bends.items()},
                snapshot.view,
            )
        with self.lock:
            self.records[fn] = record
            self.bend_set.retarget(fn, record, self.versions.parameters())
            self.backend.recorded()
            self.generation.bump()
        return record

    def retrace(self, fn: str, args: tuple, kwargs: dict, runtime: dict[str, Any]) -> None:
        record = self.record(fn)
        self.retraces[fn] = self.retraces.get(fn, 0) + 1
        self.trace(fn, args, kwargs, record.leaves, retrace=True, runtime=runtime)

    def no_per_example_argument(self, fn: str) -> None:
        """Refuse to bend a method that takes its own ``per_example`` argument (the keyword is ours)."""
        if "per_example" in (self.backend.arguments(fn) or ()):
            raise BendingError(
                f"{self.backend.model_name}.{fn} has its own 'per_example' argument, which torchbend "
                "takes for per-example parameter values on every bent method; rename the argument, "
                "or call the model's own method unbent"
            )

    # --- bends ----------------------------------------------------------------------------------
    @property
    def bends(self) -> list[Bend]:
        return list(self.bend_set)

    def add_bend(self, callback: BendingCallback, targets: list[Target]) -> Bend:
        """Attach `callback` to `targets`; it is applied once here, so a bend that cannot work fails now."""
        bend = self.bend_set.prepare(callback, targets, self.records, self.remove_bends)
        with self.lock:
            self.bend_set.add(bend)
            self.generation.bump()
            if bend.weights:
                try:
                    self._build()
                except Exception as error:
                    self.bend_set.remove([bend], self.versions.parameters())
                    self.generation.bump()
                    cause = error if isinstance(error, BendingError) else f"{type(error).__name__}: {error}"
                    raise BendingError(f"{callback!r} could not bend {', '.join(bend.weights)}: {cause}") from error
        return bend

    def remove_bends(self, bends: Sequence[Bend]) -> None:
        with self.lock:
            self.bend_set.remove(bends, self.versions.parameters())
            self.generation.bump()

    @property
    def parameters(self) -> dict[str, BendingParameter]:
        return {p.name: p for p in [*self.bend_set.parameters(), *self.versions.parameters()]}

    def weight_plan(self) -> dict[str, Steps]:
        return self.bend_set.weight_plan()

    def activation_steps(self, fn: str) -> dict[str, Steps]:
        return self.bend_set.activation_steps(fn, self.records.get(fn))

    # --- versions -------------------------------------------------------------------------------
    def set_mix(self, mix: dict[str, Any] | None, interpolation: Interpolation | None = None) -> None:
        """Make `mix` (version name -> weight) the base of every weight; None: the module's own weights."""
        with self.lock:
            previous = (self.versions.mix, self.versions.interpolation)
            self.versions.mix = None if mix is None else self.versions.check_mix(mix)
            if interpolation is not None:
                self.versions.interpolation = interpolation
            self.bend_set.subscribe(self.versions.parameters())
            self.generation.bump()
            try:
                self._build()
            except Exception:
                self.versions.mix, self.versions.interpolation = previous
                self.generation.bump()
                raise
            finally:
                self.bend_set.prune(self.versions.parameters())

    def write(self, name: str | None) -> str:
        """Bake the weights as bent now into version `name` (default: the one in use), clear the weight bends,
        and use that version."""
        with self.lock:
            mix = self.versions.mix or {}
            if name is None:
                if len(mix) != 1 or next(iter(mix)) == ORIGINAL:
                    raise BendingError(
                        "write() without a name overwrites the version in use, and none is: the "
                        "module's own weights are never written; give a name: write('bent')"
                    )
                name = next(iter(mix))
            snapshot = self._build()
            weights = {
                **{n: t.detach() for n, t in snapshot.bases.items()},
                **{n: e.bent.detach() for n, e in snapshot.entries.items()},
            }
            self.versions.create(name, weights, strict=False)
            self.versions.mix = {name: 1.0}
            self.bend_set.drop_weight_bends(self.versions.parameters())
            self.generation.bump()
            return name

    def weights_at(
        self, plan: dict[str, Steps], values: dict[BendingParameter, Any]
    ) -> tuple[dict[str, torch.Tensor], dict[str, Entry]]:
        """The version bases and the bent weights of `plan` at these parameter values (one-off: not cached)."""
        with self.lock, frozen_values(values):
            bases = self.versions.bases()
            return bases, self.weights.compute(plan, bases, cache=False)

    # --- snapshots ------------------------------------------------------------------------------
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
            version = self.generation.value  # read before the values: a change after it forces the next build
            values = {p: p._value for p in self.parameters.values()}
            plan = self.weight_plan()
            with frozen_values(values):
                bases = self.versions.bases()
                entries = self.weights.compute(plan, bases)
            steps = {fn: self.activation_steps(fn) for fn in self.records}
            snapshot = Snapshot(
                self.generation, version, values, entries, steps, bases, plan, dict(self.records), self.programs
            )
            self.programs.keep(steps, self.records)
            self._snapshot = snapshot
            return snapshot

    def moved(self, device: torch.device | None, dtype: torch.dtype | None) -> None:
        """After the module moved or was cast: move what the records hold, and rebuild what calls run."""
        with self.lock:
            for record in self.records.values():
                record.to(device, dtype)
            self.backend.moved(device, dtype)
            self.programs.clear()
            self.generation.bump()


def _bent_value(bend: ActivationBend, runtime: dict[str, Any]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        return bend(value, **{k: runtime[k] for k in bend.inputs if k in runtime})

    return apply


__all__ = ["Bend", "Engine", "Snapshot", "Steps", "activation_bends"]
