"""How a bended call runs: on the engine's current snapshot, re-traced, per example, or with values for one call.

    >>> b = bended.bend(tb.Scale(tb.BendingParameter("gain", 1.0)), "decoder.net.convt0.weight")
    >>> out = call(bended.engine, "decode", (z,), {})                        # what bended.decode(z) does
    >>> out = call(bended.engine, "decode", (z,), {"per_example": {"gain": [0.5] * len(z)}})
    >>> out = call_with(bended.engine, "decode", (z,), {}, {"gain": 0.25})   # nothing is set

Run-time keywords (inputs of callbacks, such as a `tb.Mix`'s other signal) are split from
the method's own in one place, `split_runtime`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..bending.parameter import BendingParameter, frozen_values
from ..errors import SpecializationError
from ..runtime import per_example
from .engine import Engine
from .snapshot import Snapshot

if TYPE_CHECKING:
    from .backend import Runner


def split_runtime(runtime_inputs: tuple[str, ...], kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """`kwargs` split into the method's own keywords and the run-time inputs of its bends."""
    if not runtime_inputs or not kwargs:
        return kwargs, {}
    runtime = {k: v for k, v in kwargs.items() if k in runtime_inputs}
    if not runtime:
        return kwargs, {}
    return {k: v for k, v in kwargs.items() if k not in runtime}, runtime


def run(runner: Runner, snapshot: Snapshot, args: tuple, kwargs: dict[str, Any]) -> Any:
    """`runner` called with these inputs and the snapshot's parameter values."""
    kwargs, runtime = split_runtime(runner.runtime_inputs, kwargs)
    with frozen_values(snapshot.values):
        return runner.run(args, kwargs, runtime)


def call(engine: Engine, fn: str, args: tuple, kwargs: dict[str, Any]) -> Any:
    """Run method `fn` bent: on the current snapshot, re-tracing once when it was traced with retrace=True
    and this call takes another path. A ``per_example`` keyword: see `call_per_example`."""
    if kwargs and "per_example" in kwargs:
        kwargs = dict(kwargs)
        values = kwargs.pop("per_example")
        if values is not None:
            return call_per_example(engine, fn, args, kwargs, values)
    snapshot = engine._snapshot  # `engine.snapshot().runner(fn)`, inlined: these lines run at every call
    if snapshot is None or not snapshot.current():
        snapshot = engine.snapshot()
    runner = snapshot._runners.get(fn) or snapshot.runner(fn)
    own, runtime = split_runtime(runner.runtime_inputs, kwargs) if runner.runtime_inputs else (kwargs, {})
    try:
        with frozen_values(snapshot.values):
            return runner.run(args, own, runtime)
    except SpecializationError:
        record = snapshot.records.get(fn)
        if record is None or not record.retrace:
            raise
    engine.retrace(fn, args, own, runtime)
    snapshot = engine.snapshot()
    return run(snapshot.runner(fn), snapshot, args, kwargs)


def call_per_example(engine: Engine, fn: str, args: tuple, kwargs: dict[str, Any], values: Any) -> Any:
    """Run `fn` bent with one value of some parameters per batch item (`torchbend.runtime.per_example`)."""
    engine.no_per_example_argument(fn)
    snapshot = engine.snapshot()
    groups = per_example.Groups(per_example.parse(values, {p.name: p for p in snapshot.values}), snapshot.values)
    per_example.check_inputs(args, kwargs, groups.size)
    record = snapshot.records.get(fn)
    varying = {
        name: steps
        for name, steps in snapshot.plan.items()
        if any(per_example.depends(cb, groups.params) for cb, _ in steps)
    }
    view = None
    if record is not None and record.grouped_bends and not groups.params & set(engine.versions.parameters()):
        view = (
            engine.backend.per_example_view(engine.weights_at, snapshot, groups, varying, record)
            if varying
            else snapshot.view
        )
    if view is None:
        return per_group_calls(engine, fn, args, kwargs, groups, snapshot)
    program = snapshot.program(fn)
    return run(program.bind(view, per_example.grouped_bends(program.bends, groups)), snapshot, args, kwargs)


def per_group_calls(
    engine: Engine, fn: str, args: tuple, kwargs: dict[str, Any], groups: per_example.Groups, snapshot: Snapshot
) -> Any:
    """`fn` called once per group, on the group's rows and with its values; the outputs joined."""
    outputs = []
    for rows, values in zip(groups.members, groups.values):
        group_args, group_kwargs = per_example.split((args, kwargs), rows, groups.size)
        outputs.append(_call_at(engine, fn, group_args, group_kwargs, values, snapshot))
    return per_example.join(outputs, groups, f"{fn}'s output")


def call_with(engine: Engine, fn: str, args: tuple, kwargs: dict[str, Any], values: dict[str, Any]) -> Any:
    """Run `fn` bent with some parameters (by name) at other values for this call only; nothing is set."""
    snapshot = engine.snapshot()
    params = {p.name: p for p in snapshot.values}
    checked = per_example.parse({name: [v] for name, v in values.items()}, params)
    return _call_at(engine, fn, args, kwargs, {**snapshot.values, **{p: v[0] for p, v in checked.items()}}, snapshot)


def _call_at(
    engine: Engine,
    fn: str,
    args: tuple,
    kwargs: dict[str, Any],
    values: dict[BendingParameter, Any],
    snapshot: Snapshot,
) -> Any:
    bases, entries = engine.weights_at(snapshot.plan, values)
    at = snapshot.at(values, bases, entries)
    return run(at.runner(fn), at, args, kwargs)
