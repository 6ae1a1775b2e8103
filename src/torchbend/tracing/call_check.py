"""Clear errors for a call that does not fit its trace: the wrong keywords, or inputs of other shapes.

    >>> bended.trace("decode", z=torch.randn(16, 64))
    >>> bended.decode(x=torch.randn(16, 64))
    Traceback (most recent call last):
    TypeError: decode(self, z: 'torch.Tensor') -> 'torch.Tensor': unexpected keyword argument 'x'; missing 'z'
    >>> bended.decode(torch.randn(16, 32))
    Traceback (most recent call last):
    torchbend.errors.SpecializationError: z has shape (16, 32), but decode was traced with z of shape (16, 64), ...

`binding_error` names what a failed `inspect.Signature.bind` lacks and what it did not expect;
`shape_error` is asked, after a traced program failed, whether an input's shape differs from the one
traced, and turns the raw error from generated code into one naming the argument, both shapes and the
way out (the traced shape, a new trace, or ``retrace=True``, which re-traces such calls on its own).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..errors import SpecializationError


def binding_error(name: str, signature: inspect.Signature, args: tuple, kwargs: dict, error: TypeError) -> TypeError:
    """A TypeError for ``name(*args, **kwargs)`` (`args` as `signature` takes them, ``self`` included when it has
    one) naming the unexpected keywords and the missing arguments."""
    params = list(signature.parameters.values())
    takes_any = any(p.kind == p.VAR_KEYWORD for p in params)
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unexpected = [] if takes_any else [k for k in kwargs if k not in named]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    given = {p.name for p in positional[: len(args)]} | set(kwargs)
    missing = [
        p.name
        for p in params
        if p.default is p.empty and p.name not in given and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    parts = (
        [f"unexpected keyword argument{'s' if len(unexpected) > 1 else ''} {', '.join(map(repr, unexpected))}"]
        if unexpected
        else []
    )
    parts += [f"missing {', '.join(map(repr, missing))}"] if missing else []
    return TypeError(f"{name}{signature}: {'; '.join(parts) if parts else error}")


def shape_error(
    method: str,
    names: Sequence[str],
    inputs: Sequence[Any],
    traced: Mapping[str, tuple[int, ...] | None],
    error: BaseException,
) -> SpecializationError | None:
    """The error to raise instead of `error` when an input's shape differs from its traced one (None if none
    does): naming each such argument, its traced and given shapes, and the ways out."""
    differ = [
        (name, traced[name], tuple(value.shape))
        for name, value in zip(names, inputs)
        if isinstance(value, torch.Tensor) and traced.get(name) is not None and tuple(value.shape) != traced[name]
    ]
    if not differ:
        return None
    what = "; ".join(
        f"{name} has shape {given}, but {method} was traced with {name} of shape {shape}"
        for name, shape, given in differ
    )
    cause = str(error).splitlines()[0][:200] if str(error) else ""
    return SpecializationError(
        f"{what}, and its graph depends on it ({type(error).__name__}: {cause}). Call it with inputs of the traced "
        f"shapes, trace it again with these (bended.trace({method!r}, ...)), or trace it with retrace=True to have "
        "such calls traced again automatically"
    )
