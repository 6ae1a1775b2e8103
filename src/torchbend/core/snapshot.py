"""What one call runs on: an immutable snapshot of a bended module's state, and the programs it runs.

    >>> snapshot = bended.engine.snapshot()
    >>> runner = snapshot.runner("decode")                 # compiled once per set of bends
    >>> out = runner.run((z,), {}, {})
    >>> snapshot.current()                                 # until a bend or parameter changes
    True

A snapshot holds the parameter values, the bent weights computed from them, the view a
call runs against, the activation bends of each method and the records they were made
for, all taken together under the engine's lock. It never changes and holds no reference
to the engine: `current()` compares its version with the shared `Generation` counter.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn

from ..runtime.program import ActivationBend
from ..runtime.weights import Entry
from ..tracing.record import MethodRecord
from .bends import Steps

if TYPE_CHECKING:
    from ..bending.parameter import BendingParameter
    from .backend import MethodBackend, PartRunner, Runner


class Generation:
    """A counter bumped by every change to a bended module's state (bends, parameters, records, versions)."""

    __slots__ = ("value", "__weakref__")

    def __init__(self) -> None:
        self.value = 0

    def bump(self, *_: Any) -> None:
        self.value += 1


def options_key(options: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))


def structure(steps: Mapping[str, Steps]) -> tuple:
    """What a program is compiled from: which activations are bent, by which callbacks and states."""
    return tuple((node, tuple((id(cb), id(state)) for cb, state in s)) for node, s in steps.items())


class ProgramCache:
    """The programs of a bended module's methods, one per (method, record, activation bends, options)."""

    def __init__(self, backend: MethodBackend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._programs: dict[tuple, Any] = {}

    def get(self, fn: str, record: MethodRecord, steps: Mapping[str, Steps], **options: Any) -> Any:
        key = (fn, record, structure(steps), *options_key(options))
        program = self._programs.get(key)
        if program is None:
            with self._lock:
                program = self._programs.get(key)
                if program is None:
                    bends = {node: ActivationBend(s, node) for node, s in steps.items()}
                    program = self._programs[key] = self.backend.program(record, bends, **options)
        return program

    def keep(self, steps: Mapping[str, Mapping[str, Steps]], records: Mapping[str, MethodRecord]) -> None:
        """Forget the programs no method's current bends use."""
        live = {(fn, records[fn], structure(s)) for fn, s in steps.items() if fn in records}
        with self._lock:
            self._programs = {k: v for k, v in self._programs.items() if k[:3] in live}

    def clear(self) -> None:
        with self._lock:
            self._programs.clear()


class Snapshot:
    """One consistent state of a bended module; see the module docstring."""

    def __init__(
        self,
        generation: Generation,
        version: int,
        values: dict[BendingParameter, Any],
        entries: dict[str, Entry],
        steps: dict[str, dict[str, Steps]],
        sources: Mapping[str, torch.Tensor],
        plan: dict[str, Steps],
        records: dict[str, MethodRecord],
        programs: ProgramCache,
    ) -> None:
        self.generation = generation
        self.version = version
        self.values = values
        self.entries = entries
        self.steps = steps  # method -> activation -> [(callback, state)]
        self.plan = plan  # bent weight -> [(callback, state)], in the order the bends were made
        self.records = records
        self.sources = dict(sources)  # the weights a version mix gives, before bends
        self.bases = {
            name: nn.Parameter(t, requires_grad=False) for name, t in self.sources.items() if name not in entries
        }  # weights of a version, not bent further
        self.programs = programs
        self.view = programs.backend.view(self.bases, entries)  # what calls run against (see `MethodBackend`)
        self._checks = list(entries.values())
        self._runners: dict[Any, Runner] = {}

    def current(self) -> bool:
        """True while nothing this snapshot was built from has changed."""
        if self.version != self.generation.value:
            return False
        for entry in self._checks:
            if not entry.current():
                return False
        return True

    def runner(self, fn: str, **options: Any) -> Runner:
        """What runs `fn` (or part of it, with `options` as in `Program`) on this snapshot."""
        key = (fn, *options_key(options)) if options else fn
        runner = self._runners.get(key)
        if runner is None:
            record = self.records.get(fn)
            if record is None:
                runner = self.programs.backend.untraced(self.view, fn)
            else:
                runner = self.program(fn, **options).bind(self.view)
            self._runners[key] = runner
        return runner

    def part(self, fn: str, **options: Any) -> PartRunner:
        """What runs traced method `fn`, or part of it (`options` as in `Program`), from values by name."""
        self.records[fn]  # a KeyError for a method not traced: the engine's record() names it first
        return cast("PartRunner", self.runner(fn, **options))

    def program(self, fn: str, **options: Any) -> Any:
        """The program of traced method `fn` with this snapshot's activation bends."""
        return self.programs.get(fn, self.records[fn], self.steps.get(fn, {}), **options)

    def at(
        self, values: dict[BendingParameter, Any], sources: Mapping[str, torch.Tensor], entries: dict[str, Entry]
    ) -> Snapshot:
        """This snapshot with other parameter values and the weights computed at them (for one call)."""
        return Snapshot(
            self.generation, self.version, values, entries, self.steps, sources, self.plan, self.records, self.programs
        )
