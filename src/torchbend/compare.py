"""Comparing outputs and state dicts: the reference torchbend's test helpers, as plain predicates.

    >>> tb.compare_outs((vae.decode(z), {"n": 1}), (bended.decode(z), {"n": 1}))
    True
    >>> tb.compare_state_dict_tensors(vae.state_dict(), bended.state_dict())
    True

`compare_outs` walks tuples, lists, dicts and distributions (`torch.distributions` and
`torchbend.distributions` alike, compared by kind and parameters) and compares tensors with
`torch.allclose` (same shape and dtype required), anything else with ``==``. Both return a
bool, where the reference returned an enum whose truth meant the same.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["compare_outs", "compare_state_dict_tensors"]


def compare_outs(a: Any, b: Any, rtol: float = 1e-5, atol: float = 1e-8) -> bool:
    """True when `a` and `b` have the same structure and their tensors are close (`torch.allclose`)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (
            isinstance(a, torch.Tensor)
            and isinstance(b, torch.Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and torch.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
        )
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(compare_outs(x, y, rtol, atol) for x, y in zip(a, b))
    if isinstance(a, Mapping):
        return isinstance(b, Mapping) and a.keys() == b.keys() and all(compare_outs(a[k], b[k], rtol, atol) for k in a)
    if _is_distribution(a) or _is_distribution(b):
        return _is_distribution(a) and _is_distribution(b) and compare_outs(_parameters(a), _parameters(b), rtol, atol)
    return type(a) is type(b) and bool(a == b)


def compare_state_dict_tensors(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when the two state dicts have the same names and close tensors under each."""
    return compare_outs(dict(a), dict(b))


def _is_distribution(obj: Any) -> bool:
    if isinstance(obj, torch.distributions.Distribution):
        return True
    ours = sys.modules.get(f"{__package__}.distributions")  # not loaded: no value can be one of its classes
    return ours is not None and ours.is_distribution(obj)


def _parameters(dist: Any) -> tuple[str, Any]:
    """A distribution's kind and parameters, the same for a torch distribution and ours of the same kind."""
    from . import distributions

    try:
        ours = distributions.from_torch(dist)
    except TypeError:  # a kind torchbend.distributions lacks: the parameters torch declares for it
        return type(dist).__name__, {k: getattr(dist, k) for k in dist.arg_constraints}
    return type(ours).__name__, ours.as_tuple()
