"""Bend only some features: `Select(callback, channels)` applies `callback` to the chosen channels.

    >>> bended.bend(tb.Select(tb.Rotate(90), channels=[0, 3, 5]), "decoder_net_convt1", fn="decode")
    >>> groups = tb.cluster_features(bended, "decoder_net_convt1", fn="decode", inputs={"z": z}, k=4)
    >>> bended.bend(tb.Select(tb.Ablate(), groups["cluster_2"]), "decoder_net_convt1", fn="decode")

`channels` is a list of indices, a boolean mask, a slice, a ``"start:stop[:step]"`` string,
or a feature group from `tb.cluster_features`. Channels are counted along `channel_dim`:
by default axis 1 of an activation (B, C, ...) and axis 0 (output channels) of a weight. The
other channels pass through bit-identical. The inner callback sees only the selected slice,
so its per-target state (a mask, a noise draw) is sized for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import torch

from .callback import BendingCallback, CallbackChain
from .target import Target

Channels = Sequence[int] | Sequence[bool] | slice | str | torch.Tensor


def apply_to_channels(x: torch.Tensor, dim: int, index: torch.Tensor, bent: torch.Tensor) -> torch.Tensor:
    """`x` with its channels `index` along `dim` replaced by `bent`. TorchScript-compatible."""
    return x.index_copy(dim, index.to(x.device), bent)


def _parse_slice(text: str) -> slice:
    parts = text.split(":")
    if not 2 <= len(parts) <= 3:
        raise ValueError(f"Select: channels string must look like 'start:stop' or 'start:stop:step', got {text!r}")
    try:
        return slice(*(int(p) if p.strip() else None for p in parts))
    except ValueError:
        raise ValueError(f"Select: channels string must hold whole numbers, got {text!r}") from None


class Select(BendingCallback):
    """Applies `callback` only to the `channels` chosen along `channel_dim`; the rest pass through unchanged."""

    def __init__(
        self, callback: BendingCallback, channels: Channels, channel_dim: int | None = None, group: str | None = None
    ) -> None:
        super().__init__()
        if not isinstance(callback, BendingCallback):
            raise TypeError(f"Select: callback must be a bending callback such as tb.Ablate(), got {callback!r}")
        if channel_dim is not None and (isinstance(channel_dim, bool) or not isinstance(channel_dim, int)):
            raise TypeError(f"Select: channel_dim must be an int or None, got {channel_dim!r}")
        self.callback = callback
        self.channel_dim = channel_dim
        self.group = group if group is not None else getattr(channels, "name", None)
        self.channels = self._normalize(channels)

    @staticmethod
    def _normalize(channels: Any) -> list[int] | list[bool] | str:
        """`channels` in a form a config can save: a list of ints or bools, or a slice string."""
        if isinstance(channels, slice):
            step = "" if channels.step is None else f":{channels.step}"
            start = "" if channels.start is None else channels.start
            stop = "" if channels.stop is None else channels.stop
            return f"{start}:{stop}{step}"
        if isinstance(channels, str):
            _parse_slice(channels)
            return channels
        if isinstance(channels, torch.Tensor):
            if channels.ndim != 1:
                raise ValueError(f"Select: channels must be one-dimensional, got shape {tuple(channels.shape)}")
            channels = channels.tolist()
        if not isinstance(channels, Sequence):
            raise TypeError(
                f"Select: channels must be indices, a boolean mask, a slice or a feature group, "
                f"got {type(channels).__name__}"
            )
        values = list(channels)
        if not values:
            raise ValueError("Select: channels is empty; choose at least one channel")
        if all(isinstance(v, bool) for v in values):
            if not any(values):
                raise ValueError("Select: the channel mask selects no channel")
            return values
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            raise TypeError(f"Select: channels must be all ints or all bools, got {values!r}")
        if len(set(values)) != len(values):
            raise ValueError(f"Select: channels lists a channel twice: {values}")
        return values

    def can_bend(self, kind: str) -> bool:
        return self.callback.can_bend(kind)

    def runtime_inputs(self) -> tuple[str, ...]:
        return self.callback.runtime_inputs()

    def setup(self, target: Target) -> Any:
        rank = len(target.shape)
        default = 1 if target.batched else 0
        dim = default if self.channel_dim is None else self.channel_dim
        if not -rank <= dim < rank:
            raise ValueError(
                f"Select: channel_dim {dim} is out of range for {target.name} of shape "
                f"{tuple(target.shape)}; choose one of {-rank}..{rank - 1}"
            )
        dim %= rank
        if dim == 0 and target.batched:
            raise ValueError(
                f"Select: channel_dim 0 is the batch axis of {target.name}; features are along "
                f"another axis, usually 1 (or -1 for token-major (B, T, C) activations)"
            )
        size = target.shape[dim]
        channels = self.channels
        if isinstance(channels, str):
            index = list(range(size))[_parse_slice(channels)]
        elif isinstance(channels[0], bool):
            if len(channels) != size:
                raise ValueError(
                    f"Select: the channel mask has {len(channels)} entries but {target.name} "
                    f"has {size} channels along axis {dim}"
                )
            index = [i for i, keep in enumerate(channels) if keep]
        else:
            bad = [c for c in channels if not -size <= c < size]
            if bad:
                raise ValueError(
                    f"Select: channels {bad} are out of range for {target.name}, which has {size} "
                    f"channels along axis {dim} (valid: 0..{size - 1})"
                )
            index = sorted({c % size for c in channels})
            if len(index) != len(channels):
                raise ValueError(f"Select: channels name a channel twice: {channels}")
        if not index:
            raise ValueError(f"Select: channels {channels!r} select nothing from {size} channels of {target.name}")
        shape = list(target.shape)
        shape[dim] = len(index)
        inner = self.callback.setup(replace(target, shape=tuple(shape)))
        return dim, torch.tensor(index, dtype=torch.long), inner

    def forward(self, x: torch.Tensor, state: Any, **inputs: Any) -> torch.Tensor:
        dim, index, inner = state
        index = index.to(x.device)
        bent = self.callback.forward(x.index_select(dim, index), inner, **inputs)
        return apply_to_channels(x, dim, index, bent.to(x.dtype))

    def script(self, x: str, state: Any, ctx: Any) -> str:
        dim, index, inner = state
        idx = ctx.tensor(index, "channels")
        bent = f"{x}.index_select({dim}, {idx}.to({x}.device))"
        cb = self.callback
        steps = zip(cb.callbacks, inner) if isinstance(cb, CallbackChain) else [(cb, inner)]
        for cb, cb_state in steps:
            bent = cb.script(f"({bent})", cb_state, ctx)
        return f"{ctx.function(apply_to_channels)}({x}, {dim}, {idx}, {bent})"

    def extra_repr(self) -> str:
        group = f", group={self.group!r}" if self.group else ""
        dim = "" if self.channel_dim is None else f", channel_dim={self.channel_dim}"
        return f"channels={self.channels!r}{dim}{group}"
