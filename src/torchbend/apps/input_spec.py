"""A small language for a method's inputs on the command line.

    >>> parse_inputs(["z=randn(16,64)"], seed=0)["z"].shape
    torch.Size([16, 64])
    >>> parse_inputs(["x=rand(4,1,28,28)", "w=batch.pt", "t=0.5"])   # keys: x, w, t

Each item is ``NAME=VALUE``; several may share one argument, separated by ``;``. A VALUE is
``randn(d, ...)``, ``rand(d, ...)``, ``zeros(d, ...)``, ``ones(d, ...)``, ``linspace(start, end, n)``,
a number (a 0-d tensor), or a ``.pt`` file holding one tensor (read with ``weights_only=True``).
Random values are drawn from one generator seeded with `seed`, in the order given. Sizes are
whole numbers >= 0, and one value holds at most `MAX_ELEMENTS` numbers (checked before allocating).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from ..errors import BendingError

_CALL = re.compile(r"^(\w+)\((.*)\)$")
_FACTORIES = ("randn", "rand", "zeros", "ones", "linspace")
MAX_ELEMENTS = 1 << 28  # numbers in one value (1 GiB of float32); change it here for larger inputs


class InputSpecError(BendingError):
    """An inputs spec that cannot be read; the message quotes the item and the expected forms."""


def _numbers(text: str, item: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InputSpecError(f"{item!r}: the arguments must be numbers") from None


def _sizes(sizes: list[float], item: str) -> list[int]:
    """`sizes` as ints after checking them: whole, >= 0, at most `MAX_ELEMENTS` numbers in all."""
    for size in sizes:
        if not (size >= 0 and float(size).is_integer()):
            raise InputSpecError(f"{item!r}: a size is a whole number >= 0, got {size:g}")
    if math.prod(int(size) for size in sizes) > MAX_ELEMENTS:
        raise InputSpecError(
            f"{item!r}: too large; one input holds at most {MAX_ELEMENTS} numbers "
            "(MAX_ELEMENTS in torchbend.apps.input_spec)"
        )
    return [int(size) for size in sizes]


def parse_shape(text: str, item: str = "--shape") -> tuple[int, ...]:
    """The sizes in `text` (``"16,64"``), checked as in ``randn(16,64)``; `item` names the text in errors.

    >>> parse_shape("16,64")
    (16, 64)
    """
    return tuple(_sizes(_numbers(text, f"{item} {text}"), f"{item} {text}"))


def _value(text: str, item: str, generator: torch.Generator) -> torch.Tensor:
    call = _CALL.match(text)
    if call:
        factory, args = call.group(1), _numbers(call.group(2), item)
        if factory not in _FACTORIES:
            raise InputSpecError(f"{item!r}: unknown function {factory!r}; use one of {', '.join(_FACTORIES)}")
        if factory == "linspace":
            if len(args) != 3:
                raise InputSpecError(f"{item!r}: linspace takes start, end, n")
            return torch.linspace(args[0], args[1], _sizes(args[2:], item)[0])
        shape = _sizes(args, item)
        if factory in ("randn", "rand"):
            return getattr(torch, factory)(shape, generator=generator)
        return getattr(torch, factory)(shape)
    if text.endswith(".pt"):
        if not Path(text).exists():
            raise InputSpecError(f"{item!r}: no such file {text}")
        value = torch.load(text, map_location="cpu", weights_only=True)
        if not isinstance(value, torch.Tensor):
            raise InputSpecError(f"{item!r}: {text} holds a {type(value).__name__}, not one tensor")
        return value
    try:
        return torch.tensor(float(text))
    except ValueError:
        raise InputSpecError(
            f"{item!r}: expected randn(...), rand(...), zeros(...), ones(...), linspace(a,b,n), a number or a .pt file"
        ) from None


def parse_inputs(items: Sequence[str], seed: int = 0) -> dict[str, torch.Tensor]:
    """The named tensors that `items` (``NAME=VALUE`` strings) describe, drawn reproducibly from `seed`."""
    generator = torch.Generator().manual_seed(seed)
    inputs: dict[str, torch.Tensor] = {}
    for item in (part.strip() for entry in items for part in entry.split(";")):
        if not item:
            continue
        name, sep, text = item.partition("=")
        name, text = name.strip(), text.replace(" ", "")
        if not sep or not name.isidentifier():
            raise InputSpecError(f"{item!r}: expected NAME=VALUE, e.g. z=randn(16,64)")
        if name in inputs:
            raise InputSpecError(f"{item!r}: {name} is given twice")
        inputs[name] = _value(text, item, generator)
    return inputs
