"""Reading activations out of a bended method and feeding values back in.

    >>> acts = bended.get_activations("decoder_net_convt1", z=z, fn="decode")   # stops there
    >>> out = bended.from_activations("decoder_net_convt1", fn="decode", **acts) # runs the rest
    >>> with bended.capture():                                                    # tb.Capture bends record
    ...     bended.decode(z)

`ActivationIO` is a part of `BendedModule`: the programs it builds for part of a method
are cached per (method, names) until the bends of that method change.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import torch

from .bending.capture import Capture
from .errors import BendingError
from .tracing.hooks import HookedProgram
from .tracing.program import Program
from .tracing.record import MethodRecord

if TYPE_CHECKING:
    from .bended import BendedModule


class ActivationIO:
    """The activation input/output half of `BendedModule`."""

    def _partial_program(self: BendedModule, fn: str, **options: Any) -> Program | HookedProgram:
        """A cached program for part of `fn` (see `Program` for `outputs`, `after_bends`, `cut`)."""
        self._refresh()
        key = (fn, *sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in options.items()))
        program = self._partial_programs.get(key)
        if program is None:
            program = self._make_program(fn, **options)
            self._partial_programs[key] = program
        return program

    def get_activations(self: BendedModule, *names: str, fn: str = "forward", after_bends: bool = False,
                        _filter_bended: bool = True, **inputs: Any) -> dict[str, torch.Tensor]:
        """Run `fn` on `inputs` until the named activations are known; return them by name.

        Values are taken before the bends at their own node (bends elsewhere apply);
        ``after_bends=True`` takes them after. The spelling ``_filter_bended=True`` is accepted
        and means the default.

            >>> acts = bended.get_activations("decoder_net_convt1", z=z, fn="decode")
        """
        record = self._record(fn)
        resolved = self.resolve_activations(*names, fn=fn) if names else []
        if not resolved:
            raise BendingError("get_activations needs at least one activation name or pattern")
        program = self._partial_program(fn, outputs=resolved, after_bends=after_bends)
        runtime = {k: inputs.pop(k) for k in program.runtime_inputs if k in inputs}
        values = record.named_inputs(inputs)
        return self._weights.run(program.call_named, {**values, **runtime})

    def from_activations(self: BendedModule, *names: str, fn: str = "forward", **values: Any) -> Any:
        """Run the rest of `fn` from given activation values, skipping what only fed them.

        Give each activation's value by keyword (its name), plus any original input still
        needed after the cut and run-time inputs of callbacks. The activation's own bends
        apply to the given value; its batch size may differ from the trace.

            >>> acts = bended.get_activations("decoder_net_convt1", z=z, fn="decode")
            >>> out = bended.from_activations("decoder_net_convt1", fn="decode", **acts)
        """
        record = self._record(fn)
        if names:
            cut = self.resolve_activations(*names, fn=fn)
        else:
            cut = [n for n in record.activations if n in values and n not in record.input_names]
            if not cut:
                raise BendingError("from_activations needs activation values by name, e.g. "
                                   f"from_activations(**{{{record.activation_names()[-1]!r}: tensor}}, fn={fn!r})")
        for name in cut:
            self._check_activation_value(record, name, values.get(name))
        program = self._partial_program(fn, cut=cut)
        if record.kind == "hooks":  # the method runs whole: it takes its own arguments
            return self._weights.run(program.call_named, values)
        allowed = set(program.input_names) | set(record.input_names) | {k for b in self._activation_bends(fn).values()
                                                                          for k in b.inputs}
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise BendingError(f"from_activations got unexpected inputs {unknown}; it takes the cut activations "
                               f"{cut}, the inputs {[n for n in program.input_names if n not in cut]}")
        missing = [n for n in program.input_names if n not in values and n not in program.runtime_inputs]
        if missing:
            raise BendingError(f"from_activations of {cut} in {fn} still needs the inputs {missing}")
        return self._weights.run(program.call_named, values)

    @contextlib.contextmanager
    def capture(self: BendedModule, *callbacks: Capture) -> Iterator[None]:
        """Record activations with the `Capture` callbacks in use (or those given) while inside.

            >>> with bended.capture():
            ...     bended.decode(z1); bended.decode(z2)
        """
        if not callbacks:
            callbacks = tuple(dict.fromkeys(m for bend in self._bends for m in bend.callback.modules()
                                            if isinstance(m, Capture)))
        if not callbacks:
            raise BendingError("no Capture callback is bent: bend tb.Capture() on an activation first")
        for cb in callbacks:
            cb.start()
        try:
            yield
        finally:
            for cb in callbacks:
                cb.stop()

    @staticmethod
    def _check_activation_value(record: MethodRecord, name: str, value: Any) -> None:
        info = record.activations[name]
        expected = ("B",) + tuple(info.shape[1:]) if info.shape else info.shape
        if value is None:
            raise BendingError(f"from_activations needs a value for {name}: a tensor of shape {expected}")
        if not isinstance(value, torch.Tensor):
            raise BendingError(f"the value for {name} must be a tensor of shape {expected}, got {type(value).__name__}")
        if info.shape is not None and (value.ndim != len(info.shape) or tuple(value.shape[1:]) != info.shape[1:]):
            raise BendingError(f"the value for {name} has shape {tuple(value.shape)}, expected {expected} "
                               "(any batch size B)")
