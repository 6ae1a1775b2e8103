"""Weight versions: named sets of weights (a fine-tuned checkpoint, baked bends) and morphs between them.

    >>> versions = Versions(vae)
    >>> lacks = versions.create("louder", {"decoder.net.convt1.weight": 2 * vae.decoder.net.convt1.weight},
    ...                         strict=False)       # the names it does not set keep the module's values
    >>> versions.mix = {"original": 0.5, "louder": 0.5}
    >>> base = versions.bases()["decoder.net.convt1.weight"]
    >>> torch.allclose(base, 1.5 * vae.decoder.net.convt1.weight)
    True

A version stores only the tensors that differ from the module's own. The active `mix`
maps version names (``"original"`` is the module itself; ``"_default"``, the reference
torchbend's name for it, is taken too) to weights, numbers or live
`BendingParameter`s; each weight is their weighted sum, normalised by the sum of the
weights, or what a custom `interpolation(tensors, weights)` returns. Bends apply on top.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import torch
from torch import nn

from ..bending.parameter import BendingParameter, LiveValue, sources_of, value_of
from ..errors import BendingError
from ..naming import closest_names
from ..wrapper import as_module, holds_modules

ORIGINAL = "original"
DEFAULT = "_default"  # the reference torchbend's name of the module's own weights, taken for ORIGINAL
Interpolation = Callable[[Sequence[torch.Tensor], Sequence[float]], torch.Tensor]


def version_name(name: Any) -> Any:
    """`name` with the reference's ``"_default"`` read as ``"original"`` (anything else as it is)."""
    return ORIGINAL if name == DEFAULT else name


def weighted_mean(tensors: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """``sum(w * t) / sum(w)`` (the plain sum when the weights sum to zero)."""
    total = sum(weights)
    out = cast(torch.Tensor, sum(w * t for w, t in zip(weights, tensors)))  # one tensor or more
    return out / total if total else out


class Versions:
    """The named versions of one module's weights and the mix in effect (None: the module's own weights)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.stored: dict[str, dict[str, torch.Tensor]] = {}
        self.mix: dict[str, float | LiveValue] | None = None
        self.interpolation: Interpolation = weighted_mean
        self._cache: dict[str, tuple[tuple, torch.Tensor]] = {}

    def _own(self) -> dict[str, torch.Tensor]:
        return dict(self.module.named_parameters())

    def create(
        self, name: str, weights: Mapping[str, torch.Tensor] | nn.Module | Any, strict: bool = True
    ) -> list[str]:
        """Store `weights` (a state dict, a module of the same architecture, or another instance of an object
        holding modules, see `torchbend.wrapper`) as version `name`.

        Only tensors that differ from the module's own are kept. With ``strict=True`` the
        names must be exactly the module's parameters; otherwise the missing ones keep the
        module's values. Returns the module's parameter names the version does not set.
        """
        if not isinstance(name, str) or not name or version_name(name) == ORIGINAL:
            raise BendingError(f"a version needs a name other than {ORIGINAL!r} and {DEFAULT!r}, got {name!r}")
        if holds_modules(weights):  # another instance of a wrapped object: its modules, named as ours
            weights = as_module(weights)
        if isinstance(weights, nn.Module):
            weights = dict(weights.named_parameters())
        if not isinstance(weights, Mapping):
            raise TypeError(
                f"create_version takes a state dict, a module or an object holding modules, got "
                f"{type(weights).__name__}"
            )
        own = self._own()
        unknown = [k for k in weights if k not in own]
        missing = [k for k in own if k not in weights]
        if unknown and (strict or not set(unknown) <= set(dict(self.module.named_buffers()))):
            raise BendingError(
                f"version {name!r}: {unknown[0]!r} is not a parameter of the module; closest: "
                f"{', '.join(closest_names(unknown[0], list(own)))}"
            )
        if strict and missing:
            raise BendingError(
                f"version {name!r} lacks {len(missing)} parameters, e.g. {missing[0]!r} "
                "(pass strict=False to keep the module's values for those)"
            )
        stored = {}
        for key, value in weights.items():
            if key not in own:
                continue
            original = own[key]
            if not isinstance(value, torch.Tensor) or value.shape != original.shape:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise BendingError(f"version {name!r}: {key} has shape {got}, the module's has {tuple(original.shape)}")
            value = value.detach().to(device=original.device, dtype=original.dtype)
            if not torch.equal(value, original.detach()):
                stored[key] = value.clone()
        self.stored[name] = stored
        return missing

    def check_mix(self, mix: Mapping[str, Any]) -> dict[str, float | LiveValue]:
        if ORIGINAL in mix and DEFAULT in mix:
            raise BendingError(
                f"{ORIGINAL!r} and {DEFAULT!r} name the same version (the module's own weights); give its weight once"
            )
        mix = {version_name(name): weight for name, weight in mix.items()}
        for name, weight in mix.items():
            if name != ORIGINAL and name not in self.stored:
                raise BendingError(f"no version named {name!r}; versions: {', '.join([ORIGINAL, *self.stored])}")
            if not isinstance(weight, (int, float, LiveValue)) or isinstance(weight, bool):
                raise TypeError(
                    f"the weight of version {name!r} must be a number or a tb.BendingParameter, got {weight!r}"
                )
        if not mix:
            raise BendingError("give at least one version and its weight, e.g. interpolate(original=0.5, v1=0.5)")
        return dict(mix)

    def check_name(self, name: Any) -> str:
        """`name` as a stored version's name (``"_default"`` read as ``"original"``); raises if there is none."""
        name = version_name(name)
        if name != ORIGINAL and name not in self.stored:
            raise BendingError(f"no version named {name!r}; versions: {', '.join([ORIGINAL, *self.stored])}")
        return name

    def state_dict(self, name: str) -> dict[str, torch.Tensor]:
        """The module's state dict with version `name`'s tensors in place of its own (detached).

        >>> louder = versions.state_dict("louder")     # every tensor of the state dict, by name
        >>> torch.equal(louder["decoder.net.convt1.weight"], 2 * vae.decoder.net.convt1.weight)
        True
        """
        stored = self.stored.get(self.check_name(name), {})
        state = self.module.state_dict()
        first = {id(p): n for n, p in self._own().items()}
        for alias, p in self.module.named_parameters(remove_duplicate=False):  # tied weights: under every name
            if first.get(id(p)) in stored and alias in state:
                state[alias] = stored[first[id(p)]]
        return state

    def parameters(self) -> list[BendingParameter]:
        return [p for w in (self.mix or {}).values() for p in sources_of(w)]

    def bases(self) -> dict[str, torch.Tensor]:
        """The weights that differ from the module's own under the current mix (live values read now)."""
        if not self.mix:
            return {}
        own = self._own()
        names = [n for n in own if any(n in self.stored.get(v, {}) for v in self.mix)]
        weights = [float(value_of(w)) for w in self.mix.values()]
        out = {}
        for n in names:
            tensors = [own[n].detach() if v == ORIGINAL else self.stored[v].get(n, own[n].detach()) for v in self.mix]
            key = (tuple(weights), tuple(id(t) for t in tensors), own[n]._version, self.interpolation)
            hit = self._cache.get(n)
            if hit is None or hit[0] != key:
                with torch.no_grad():
                    value = tensors[0] if weights == [1.0] else self.interpolation(tensors, weights)
                hit = self._cache[n] = (key, value.to(own[n].dtype))
            out[n] = hit[1]
        return out
