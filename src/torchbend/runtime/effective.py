"""Effective weights of normalised layers: the weight a layer computes from its parameters, bendable by name.

    >>> conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(2, 3, 3))
    >>> sorted(effective_weights(conv))
    ['weight']
    >>> normalised_by(conv)["parametrizations.weight.original1"]
    'weight'

Under weight normalisation (``weight = g * v / ||v||``) a bend of ``weight_v`` is undone by
the norm: scaling it changes nothing. The effective weight, named like the weight the layer
would have without normalisation (``conv.weight``), is what a bend usually means; both the
older hook-based ``torch.nn.utils.weight_norm`` and parametrizations (``weight_norm``,
``spectral_norm``, ``orthogonal``, your own) are covered.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.weight_norm import WeightNorm


@dataclass(frozen=True)
class Effective:
    """Where an effective weight comes from: its layer, its attribute, and how the layer computes it."""

    owner: nn.Module
    attr: str
    kind: str  # "hook" (torch.nn.utils.weight_norm) or "parametrization"
    inputs: tuple[str, ...]  # the parameters it is computed from, as paths below `owner`

    def compute(self) -> torch.Tensor:
        with torch.no_grad():
            if self.kind == "hook":
                hook = _hook(self.owner, self.attr)
                assert hook is not None  # kind "hook": the owner holds a weight-norm hook for attr
                return hook.compute_weight(self.owner).detach()
            return getattr(self.owner, self.attr).detach()


def _hook(module: nn.Module, attr: str) -> WeightNorm | None:
    return next((h for h in module._forward_pre_hooks.values() if isinstance(h, WeightNorm) and h.name == attr), None)


def effective_weights(module: nn.Module) -> dict[str, Effective]:
    """Every effective weight below `module`, by name (``path.attr``)."""
    found: dict[str, Effective] = {}
    for path, sub in module.named_modules():
        prefix = f"{path}." if path else ""
        for hook in sub._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm):
                found[prefix + hook.name] = Effective(sub, hook.name, "hook", (f"{hook.name}_g", f"{hook.name}_v"))
        if parametrize.is_parametrized(sub):
            for attr, plist in sub.parametrizations.items():
                inputs = tuple(f"parametrizations.{attr}.{n}" for n, _ in plist.named_parameters(recurse=False))
                found[prefix + attr] = Effective(sub, attr, "parametrization", inputs)
    return found


def normalised_by(module: nn.Module) -> dict[str, str]:
    """Each parameter that a normalisation turns into an effective weight -> that weight's name."""
    out = {}
    for name, eff in effective_weights(module).items():
        prefix = name[: len(name) - len(eff.attr)]
        for inp in eff.inputs:
            out[prefix + inp] = name
    return out


class Fixed(nn.Module):
    """A parametrization that returns a given tensor: how a view holds a bent effective weight."""

    def __init__(self, tensor: torch.Tensor) -> None:
        super().__init__()
        self.tensor = tensor

    def forward(self) -> torch.Tensor:
        return self.tensor
