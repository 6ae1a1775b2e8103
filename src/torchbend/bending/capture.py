"""Recording activations over several calls: `Capture` and `InterpolationFromCapture`.

    >>> cap = tb.Capture()
    >>> bended.bend(cap, "decoder_net_convt1", fn="decode")
    >>> with bended.capture():                       # records while inside
    ...     for z in latents:
    ...         bended.decode(z)
    >>> cap.captures["decode:decoder_net_convt1"]     # every recorded item, along the batch axis
"""

from __future__ import annotations

from typing import Any

import torch

from .activations import mix_batch
from .callback import BendingCallback
from .target import Target


class _Recording:
    def __init__(self, name: str) -> None:
        self.name = name
        self.parts: list[torch.Tensor] = []


class Capture(BendingCallback):
    """Passes activations through unchanged and, while capturing, records them per target.

    `captures` maps each target (``"method:activation"``) to the recorded values of the
    latest capture, concatenated along the batch axis.
    """

    weights = False
    controls = ()

    def __init__(self) -> None:
        super().__init__()
        self.capturing = False
        self.captures: dict[str, torch.Tensor] = {}
        self._recordings: dict[str, _Recording] = {}

    def setup(self, target: Target) -> _Recording:
        recording = self._recordings[target.qualified] = _Recording(target.qualified)
        return recording

    def start(self) -> None:
        """Begin a new capture (what an earlier one recorded is kept until this one stops)."""
        for recording in self._recordings.values():
            recording.parts = []
        self.capturing = True

    def stop(self) -> None:
        """End the capture: `captures` then holds what it recorded."""
        self.capturing = False
        self.captures = {name: torch.cat(r.parts, dim=0) for name, r in self._recordings.items() if r.parts}
        for recording in self._recordings.values():
            recording.parts = []

    def forward(self, x: torch.Tensor, state: _Recording) -> torch.Tensor:
        if self.capturing:
            state.parts.append(x.detach().clone())
        return x


class InterpolationFromCapture(Capture):
    """A `Capture` that can replace its activation by mixtures of what it captured.

    Given the run-time keyword `capture_weights` of shape (N, K) for K captured items,
    the activation becomes ``sum_k w[n, k] * captured[k]`` (N items); without it, it
    passes through (and records while capturing). ``softmax=True`` normalises the rows.
    """

    def __init__(self, softmax: bool = False) -> None:
        super().__init__()
        if not isinstance(softmax, bool):
            raise TypeError(f"InterpolationFromCapture: softmax must be True or False, got {softmax!r}")
        self.softmax = softmax

    def forward(self, x: torch.Tensor, state: _Recording, capture_weights: torch.Tensor | None = None) -> Any:
        x = super().forward(x, state)
        if capture_weights is None:
            return x
        if state.name not in self.captures:
            raise ValueError(f"nothing was captured at {state.name} yet: "
                             "call the method inside `with bended.capture():` first")
        captured = self.captures[state.name].to(device=x.device, dtype=x.dtype)
        return mix_batch(captured, capture_weights, self.softmax, "capture_weights")
