"""Tables describing a bended module: its weights, its activations, and how each method was traced.

    >>> bended.print_weights(r"decoder.*")         # name, shape, dtype, statistics, bends
    >>> bended.print_activations("decode")         # name, op, target, shape, dtype
    >>> bended.trace_report("decode")              # specialisations, leaves and fallbacks

`Inspection` is a part of `BendedModule`. Each ``print_*`` prints in a terminal and
displays an HTML table in a notebook; each ``*_table`` returns the `Table` itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .naming import match_names
from .tables import Table, show

if TYPE_CHECKING:
    from .bended import BendedModule


class Inspection:
    """The inspection half of `BendedModule`."""

    def weights_table(self: BendedModule, pattern: str | None = None) -> Table:
        """Name, shape, dtype, min, max, mean and std of the weights and opted-in buffers (matching `pattern`)."""
        every = self.weight_names + self._buffer_names
        names = match_names([pattern], every, "weight") if pattern is not None else every
        bent = {name: [] for name in names}
        for bend in self._bends:
            for name in bend.weights:
                if name in bent:
                    bent[name].append(type(bend.callback).__name__)
        rows = []
        for name in names:
            w = self._weights.tensor(name).detach()
            f = w.float()
            std = f.std().item() if f.numel() > 1 else 0.0
            rows.append([name, tuple(w.shape), str(w.dtype).replace("torch.", ""), f.min().item(), f.max().item(),
                         f.mean().item(), std, " >> ".join(bent[name])])
        return Table(["name", "shape", "dtype", "min", "max", "mean", "std", "bent by"], rows)

    def print_weights(self: BendedModule, pattern: str | None = None) -> None:
        """Print (or display in a notebook) the weights table."""
        show(self.weights_table(pattern))

    def activations_table(self: BendedModule, fn: str = "forward") -> Table:
        """Name, op, target, shape and dtype of every activation of `fn`."""
        rows = [[a.name, a.op, a.target, a.shape if a.is_tensor else a.type, str(a.dtype or "").replace("torch.", "")]
                for a in self._record(fn).activations.values()]
        return Table(["name", "op", "target", "shape", "dtype"], rows, title=f"activations of {fn}")

    def print_activations(self: BendedModule, fn: str = "forward") -> None:
        """Print (or display in a notebook) the activations table of `fn`."""
        show(self.activations_table(fn))

    def trace_report(self: BendedModule, fn: str = "forward") -> Table:
        """How `fn` was recorded: its mode, every specialisation with its source line, leaves and fallbacks.

        A call whose inputs would take another path than a listed decision raises
        `SpecializationError` (or re-traces, if traced with ``retrace=True``).
        """
        record = self._record(fn)
        rows = [["mode", record.kind, "graph of every op" if record.kind == "traced" else
                 f"module outputs through hooks; tracing failed: {getattr(record, 'error', '')}"]]
        rows += [["decision", f"{d.kind}({d.node}) == {d.value!r}", d.where] for d in record.decisions]
        rows += [["leaf", path, "kept whole on request"] for path in record.leaves]
        rows += [["fallback", f.module, f"kept whole: {f.reason}"] for f in record.fallbacks]
        if self._retraces.get(fn):
            rows.append(["retraced", str(self._retraces[fn]), "times, on calls that broke a decision"])
        return Table(["kind", "what", "where / why"], rows, title=f"trace report of {fn}")
