"""What the studio lists: a model's activations and weights, and the callbacks one can bend with.

>>> rows = layer_rows(bended, fn="decode")           # dicts: name, kind, group, shape, size
>>> fields = callback_fields(tb.Mask)                # typed form fields from the signature
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

from ...bending.callback import BendingCallback
from ...config import registered_callbacks

FUNCTIONS_GROUP = "(functions)"


def _module_paths(bended: Any) -> list[str]:
    return [name for name, _ in bended.module.named_modules() if name]


def parent(path: str) -> str:
    """The submodule holding `path` ("decoder.net.convt0" -> "decoder.net"; top level -> "(root)")."""
    return path.rsplit(".", 1)[0] if "." in path else "(root)"


def activation_group(name: str, module_paths: list[str]) -> str:
    """The submodule holding the module an activation is the output of (the longest module path whose
    ``_`` form is the name or starts it); function calls such as ``add`` are grouped apart. A TorchScript value
    (``decoder.2:input.1``) is grouped by the module computing it."""
    head, sep, _ = name.partition(":")
    if sep and head in module_paths:
        return parent(head)
    best = ""
    for path in module_paths:
        flat = path.replace(".", "_")
        if (name == flat or name.startswith(flat + "_")) and len(path) > len(best):
            best = path
    return parent(best) if best else FUNCTIONS_GROUP


def layer_rows(bended: Any, fn: str) -> list[dict[str, Any]]:
    """One row per activation of the traced method `fn` and per weight: name, kind, group, shape, size."""
    paths = _module_paths(bended)
    rows = []
    for name in bended.activation_names(fn=fn):
        shape = bended.activation_shape(name, fn=fn)
        rows.append(_row(name, "activation", activation_group(name, paths), shape))
    for name in bended.weight_names:
        rows.append(_row(name, "weight", parent(parent(name)), bended.weight_shape(name)))
    return rows


def _row(name: str, kind: str, group: str, shape: tuple[int, ...] | None) -> dict[str, Any]:
    size = None if shape is None else math.prod(shape)
    return {
        "name": name,
        "kind": kind,
        "group": group,
        "shape": "?" if shape is None else "×".join(map(str, shape)) or "scalar",
        "size": size,
    }


def search_rows(rows: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """Rows whose name, group or kind contains every word of `query` (case-insensitive)."""
    words = query.lower().split()
    return [r for r in rows if all(w in f"{r['name']} {r['group']} {r['kind']}".lower() for w in words)]


@dataclass(frozen=True)
class Field:
    """One constructor argument of a callback, as a form field."""

    name: str
    kind: str  # "float", "int", "bool", "text" (a Python literal) or "function"
    default: Any  # inspect.Parameter.empty when required
    live: bool  # can be a BendingParameter (a slider)

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


def callback_fields(cls: type) -> list[Field]:
    """The constructor arguments of a callback class, typed from annotations and defaults."""
    fields = []
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:  # type: ignore[misc]  # the class's own
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        note = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", str(p.annotation))
        live = "LiveValue" in note or "Scalar" in note
        default = p.default
        if "Callable" in note:
            kind = "function"
        elif isinstance(default, bool) or note.startswith("bool"):
            kind = "bool"
        elif note.startswith("float") or "Scalar" in note or isinstance(default, float):
            kind = "float"
        elif note.startswith("int") and "Sequence" not in note:
            kind = "int"
        else:
            kind = "text"
        fields.append(Field(p.name, kind, default, live))
    return fields


def callback_choices() -> dict[str, type]:
    """The registered callback classes by name (functions are offered as arguments of `Lambda`)."""
    return {
        name: obj
        for name, obj in registered_callbacks().items()
        if inspect.isclass(obj) and issubclass(obj, BendingCallback)
    }


def function_choices() -> dict[str, Any]:
    """The registered functions by name, for callbacks that take one (e.g. `Lambda`)."""
    return {name: obj for name, obj in registered_callbacks().items() if not inspect.isclass(obj)}


def default_range(name: str, value: float) -> tuple[float, float]:
    """A slider range for a live argument: [0, 1] for values in it (probabilities, thresholds), else
    [-2|v|, 2|v|] for a bias or a negative value, [0, 2|v|] otherwise (at least 1 wide)."""
    value = float(value)
    span = max(2 * abs(value), 1.0)
    if name == "bias" or value < 0:
        return (-span, span)
    if name != "scale" and value <= 1.0:
        return (0.0, 1.0)
    return (0.0, max(span, 2.0))
