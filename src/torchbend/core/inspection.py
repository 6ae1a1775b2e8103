"""Tables describing a bended module: its weights, its activations, and how each method was traced.

    >>> print(bended.weights_table(r"decoder.*").columns)   # name, shape, dtype, statistics, bends
    ['name', 'shape', 'dtype', 'min', 'max', 'mean', 'std', 'bent by']
    >>> len(bended.activations_table("decode")) > 0         # name, op, target, shape, dtype
    True
    >>> bended.trace_report("decode").rows[0][0]            # specialisations, leaves and fallbacks
    'mode'

Each ``print_*`` of `BendedModule` prints in a terminal and displays an HTML table in a
notebook; each ``*_table`` returns the `Table` itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..naming import match_names
from ..tables import ActivationTree, Table, show
from ..tables import activations_table as tree_of_activations
from .engine import Engine

__all__ = ["activations_table", "output", "show", "trace_report", "weights_table"]


def output(table: Any, out: Any = None) -> None:
    """Show `table` (printed, or displayed in a notebook), or write its text to `out`: a file object, or a path
    (its folders are made), as the reference torchbend's ``print_*(out=...)`` did."""
    if out is None:
        show(table)
    elif hasattr(out, "write"):
        out.write(f"{table}\n")
    else:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{table}\n")


def weights_table(engine: Engine, pattern: str | None = None) -> Table:
    """Name, shape, dtype, min, max, mean and std of the weights and opted-in buffers (matching `pattern`)."""
    every = engine.weight_names + engine.buffer_names
    names = match_names([pattern], every, "weight") if pattern is not None else every
    bent: dict[str, list[str]] = {name: [] for name in names}
    for bend in list(engine.bends):
        for name in bend.weights:
            if name in bent:
                bent[name].append(type(bend.callback).__name__)
    rows = []
    for name in names:
        w = engine.weights.tensor(name).detach()
        f = w.float()
        std = f.std().item() if f.numel() > 1 else 0.0
        rows.append(
            [
                name,
                tuple(w.shape),
                str(w.dtype).replace("torch.", ""),
                f.min().item(),
                f.max().item(),
                f.mean().item(),
                std,
                " >> ".join(bent[name]),
            ]
        )
    return Table(["name", "shape", "dtype", "min", "max", "mean", "std", "bent by"], rows)


def activations_table(
    engine: Engine, fn: str = "forward", pattern: str | None = None, tensors_only: bool = True
) -> ActivationTree:
    """The activations of `fn` grouped by the submodule they run in, with shapes: a compact listing in a
    terminal, a collapsible tree per submodule in a notebook. `pattern` filters names (full-match regex);
    non-tensor values (sizes, ints, devices) are hidden unless ``tensors_only=False``."""
    return tree_of_activations(engine.record(fn).activations, pattern, tensors_only, title=f"activations of {fn}")


def trace_report(engine: Engine, fn: str = "forward") -> Table:
    """How `fn` was recorded: its mode, every specialisation with its source line, leaves and fallbacks."""
    rows = engine.record(fn).describe()
    if engine.retraces.get(fn):
        rows.append(["retraced", str(engine.retraces[fn]), "times, on calls that broke a decision"])
    return Table(["kind", "what", "where / why"], rows, title=f"trace report of {fn}")
