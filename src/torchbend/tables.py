"""Tables that read well in a terminal and render as HTML in a notebook.

>>> table = Table(["name", "shape"], [["conv.weight", (4, 3, 3)]])
>>> print(table)
name         shape
-----------  ---------
conv.weight  (4, 3, 3)
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(map(str, value)) + ("," if len(value) == 1 else "") + ")"
    if value is None:
        return ""
    return str(value)


class Table:
    """Rows under named columns; ``str(table)`` is aligned text, ``_repr_html_`` an HTML table."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
        self.columns = list(columns)
        self.rows = [[_cell(v) for v in row] for row in rows]
        self.title = title

    def __len__(self) -> int:
        return len(self.rows)

    def __str__(self) -> str:
        widths = [max([len(c)] + [len(row[i]) for row in self.rows]) for i, c in enumerate(self.columns)]
        lines = [self.title] if self.title else []
        lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths)).rstrip())
        lines.append("  ".join("-" * w for w in widths))
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in self.rows]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td><code>{html.escape(v)}</code></td>" for v in row) + "</tr>" for row in self.rows
        )
        caption = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def in_notebook() -> bool:
    """True inside a Jupyter kernel."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def show(table: Table) -> None:
    """Print `table`, or display it as HTML inside a notebook."""
    if in_notebook():
        from IPython.display import display

        display(table)
    else:
        print(table)


def unique_rows(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """`rows` without repeats, in first-seen order: ``unique_rows([[1, 2], [1, 2], [3, 4]]) == [[1, 2], [3, 4]]``."""
    seen: set[tuple[str, ...]] = set()
    kept = []
    for row in rows:
        key = tuple(map(_cell, row))
        if key not in seen:
            seen.add(key)
            kept.append(list(row))
    return kept


TOP = "(method)"


def scope_of(info: Any) -> str:
    """The module an activation belongs to: its ``scope`` when recorded, else the parent of a module call's path.

    ``decoder_net_convt0`` (a call of ``decoder.net.convt0``) is in ``decoder.net``; inputs and function
    calls without a recorded scope are listed under ``(method)``.
    """
    if info.op == "call_module":  # a module kept whole belongs to the module that calls it
        return info.target.rsplit(".", 1)[0] if "." in info.target else TOP
    return getattr(info, "scope", "") or TOP


class ActivationTree:
    """Activations grouped by module scope: a compact listing in a terminal, ``<details>`` per scope in a notebook.

    >>> tree = activations_table(record.activations)
    >>> print(tree)                     # scope headers, then name and shape per line
    >>> tree.groups["decoder.net"]      # [(name, shape or type, dtype), ...]
    """

    def __init__(self, groups: dict[str, list[tuple[str, str, str]]], title: str = "") -> None:
        self.groups = groups
        self.title = title

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.groups.values())

    def names(self) -> list[str]:
        return [name for rows in self.groups.values() for name, _, _ in rows]

    def __str__(self) -> str:
        lines = [self.title] if self.title else []
        rows = [row for group in self.groups.values() for row in group]
        width = max((len(name) for name, _, _ in rows), default=0)
        shape_width = max((len(shape) for _, shape, _ in rows), default=0)
        for scope, group in self.groups.items():
            lines.append(f"{scope}/")
            lines += [f"  {n.ljust(width)}  {s.ljust(shape_width)}  {d}".rstrip() for n, s, d in group]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        parts = [f"<p><b>{html.escape(self.title)}</b></p>"] if self.title else []
        for scope, rows in self.groups.items():
            body = "".join(
                f"<tr><td><code>{html.escape(n)}</code></td><td><code>{html.escape(s)}</code></td>"
                f"<td>{html.escape(d)}</td></tr>"
                for n, s, d in rows
            )
            parts.append(
                f"<details><summary><code>{html.escape(scope)}</code> ({len(rows)})</summary>"
                f"<table><tbody>{body}</tbody></table></details>"
            )
        return "".join(parts)


def activations_table(
    activations: Mapping[str, Any], pattern: str | None = None, tensors_only: bool = True, title: str = ""
) -> ActivationTree:
    """An `ActivationTree` of `activations` (name -> ActivationInfo), in graph order, grouped by scope.

    `pattern` keeps names that it matches whole (a regular expression); ``tensors_only`` hides values
    that are not tensors (sizes, ints, devices).
    """
    regex = re.compile(pattern) if pattern is not None else None
    groups: dict[str, list[tuple[str, str, str]]] = {}
    for name, info in activations.items():
        if tensors_only and not info.is_tensor:
            continue
        if regex is not None and not regex.fullmatch(name):
            continue
        shape = _cell(tuple(info.shape)) if info.is_tensor else info.type
        dtype = str(info.dtype or "").replace("torch.", "")
        groups.setdefault(scope_of(info), []).append((name, shape, dtype))
    return ActivationTree(groups, title)
