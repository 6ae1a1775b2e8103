"""Reading activations out of a bended method and feeding values back in.

    >>> acts = bended.get_activations("decoder_net_convt1", z=z, fn="decode")   # stops there
    >>> out = bended.from_activations("decoder_net_convt1", fn="decode", **acts) # runs the rest
    >>> cap = tb.Capture()
    >>> b = bended.bend(cap, "decoder_net_convt1", fn="decode")
    >>> with bended.capture():                                                    # tb.Capture bends record
    ...     _ = bended.decode(z)
    >>> cap.captures["decode:decoder_net_convt1"].shape
    torch.Size([16, 32, 7, 7])

Each runs on the engine's current snapshot, like a call; the programs for part of a
method are compiled once per (method, bends, names).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ..bending.capture import Capture
from ..bending.parameter import frozen_values
from ..errors import BendingError, SpecializationError
from ..tracing.record import MethodRecord, same_value
from .calls import split_runtime
from .engine import Engine


def _split_names(items: Sequence[Any]) -> tuple[list[str], tuple]:
    """Leading strings are activation names or patterns; what follows are the method's positional arguments."""
    names: list[str] = []
    for i, item in enumerate(items):
        if not isinstance(item, str):
            return names, tuple(items[i:])
        names.append(item)
    return names, ()


def get_activations(
    engine: Engine, items: Sequence[Any], fn: str, after_bends: bool, inputs: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """See `BendedModule.get_activations`."""
    record = engine.record(fn)
    names, args = _split_names(items)
    resolved = engine.resolve_activations(names, fn) if names else []
    if not resolved:
        raise BendingError("get_activations needs at least one activation name or pattern")
    snapshot = engine.snapshot()
    runner = snapshot.part(fn, outputs=resolved, after_bends=after_bends)
    inputs, runtime = split_runtime(runner.program.runtime_inputs, inputs)
    values = record.named_arguments(args, inputs)
    with frozen_values(snapshot.values):
        return runner.call_named({**values, **runtime})


def from_activations(engine: Engine, items: Sequence[Any], fn: str, values: dict[str, Any]) -> Any:
    """See `BendedModule.from_activations`."""
    record = engine.record(fn)
    names, args = _split_names(items)
    if args:
        raise BendingError(
            "from_activations takes activation values by keyword (their names), e.g. "
            f"from_activations(**{{{record.activation_names()[-1]!r}: tensor}}, fn={fn!r})"
        )
    if names:
        cut = engine.resolve_activations(names, fn)
    else:
        cut = [n for n in record.activations if n in values and n not in record.input_names]
        if not cut:
            raise BendingError(
                "from_activations needs activation values by name, e.g. "
                f"from_activations(**{{{record.activation_names()[-1]!r}: tensor}}, fn={fn!r})"
            )
    snapshot = engine.snapshot()
    steps = snapshot.steps.get(fn, {})
    for name in cut:
        if not any(getattr(cb, "takes_weights", False) for cb, _ in steps.get(name, ())):
            _check_activation_value(record, name, values.get(name))
    runner = snapshot.part(fn, cut=cut)
    program = runner.program
    if record.kind != "hooks":
        values = _without_baked(record, values)
        allowed = set(program.input_names) | set(program.runtime_inputs) | set(record.input_names)
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise BendingError(
                f"from_activations got unexpected inputs {unknown}; it takes the cut activations "
                f"{cut}, the inputs {[n for n in program.input_names if n not in cut]}"
            )
        missing = [
            n
            for n in program.input_names
            if n not in values and n not in program.runtime_inputs and n not in program.optional_inputs
        ]
        if missing:
            raise BendingError(f"from_activations of {cut} in {fn} still needs the inputs {missing}")
        values = {k: v for k, v in values.items() if k in program.input_names or k in program.runtime_inputs}
    with frozen_values(snapshot.values):
        return runner.call_named(values)


def _without_baked(record: MethodRecord, values: dict[str, Any]) -> dict[str, Any]:
    """`values` without the method's non-tensor arguments, each checked against the value it was traced with."""
    baked = record.baked
    for name in set(values) & set(baked):
        if not same_value(values[name], baked[name]):
            raise SpecializationError(
                f"{record.name} was traced with {name}={baked[name]!r}, this call gives "
                f"{values[name]!r}; trace it again with this value"
            )
    return {k: v for k, v in values.items() if k not in baked}


@contextlib.contextmanager
def capture(engine: Engine, callbacks: Sequence[Capture]) -> Iterator[None]:
    """See `BendedModule.capture`."""
    if not callbacks:
        callbacks = tuple(
            dict.fromkeys(m for bend in list(engine.bends) for m in bend.callback.modules() if isinstance(m, Capture))
        )
    if not callbacks:
        raise BendingError("no Capture callback is bent: bend tb.Capture() on an activation first")
    for cb in callbacks:
        cb.start()
    try:
        yield
    finally:
        for cb in callbacks:
            cb.stop()


def _check_activation_value(record: MethodRecord, name: str, value: Any) -> None:
    info = record.activations[name]
    expected = ("B",) + tuple(info.shape[1:]) if info.shape else info.shape
    if value is None:
        raise BendingError(f"from_activations needs a value for {name}: a tensor of shape {expected}")
    if not isinstance(value, torch.Tensor):
        raise BendingError(f"the value for {name} must be a tensor of shape {expected}, got {type(value).__name__}")
    if info.shape is not None and (value.ndim != len(info.shape) or tuple(value.shape[1:]) != info.shape[1:]):
        raise BendingError(
            f"the value for {name} has shape {tuple(value.shape)}, expected {expected} (any batch size B)"
        )
