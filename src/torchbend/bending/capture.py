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
        self.rank = 0


class Capture(BendingCallback):
    """Passes activations through unchanged and, while capturing, records them per target.

    `captures` maps each target (``"method:activation"``) to every value recorded so far,
    concatenated along the batch axis: successive captures accumulate until `clear()`.
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
        recording.rank = len(target.shape)
        return recording

    def start(self) -> None:
        """Begin recording (what earlier captures recorded is kept)."""
        self.capturing = True

    def stop(self) -> None:
        """End the capture: `captures` then holds everything recorded since the last `clear()`."""
        self.capturing = False
        for name, recording in self._recordings.items():
            parts, recording.parts = recording.parts, []
            if parts:
                earlier = [self.captures[name]] if name in self.captures else []
                self.captures[name] = torch.cat(earlier + parts, dim=0)

    def clear(self) -> None:
        """Forget everything captured."""
        self.captures = {}
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
    As in the reference torchbend, the weights may also be given in place of the activation
    itself (``from_activations(node, **{node: logits})``, logits of shape (N, K)): they are
    then normalised with a softmax over the K captured items.
    """

    takes_weights = True  # from_activations may give it weights in place of its activation

    def __init__(self, softmax: bool = False) -> None:
        super().__init__()
        if not isinstance(softmax, bool):
            raise TypeError(f"InterpolationFromCapture: softmax must be True or False, got {softmax!r}")
        self.softmax = softmax

    def forward(self, x: torch.Tensor, state: _Recording, capture_weights: torch.Tensor | None = None) -> Any:
        if capture_weights is None and x.ndim == 2 != state.rank:  # weights given in place of the activation
            if state.name not in self.captures:
                raise ValueError(
                    f"weights were given for {state.name}, but nothing was captured there yet: "
                    "call the method inside `with bended.capture():` first"
                )
            captured = self.captures[state.name].to(device=x.device, dtype=x.dtype)
            return mix_batch(captured, x, True, f"the weights given for {state.name}")
        x = super().forward(x, state)
        if capture_weights is None:
            return x
        if state.name not in self.captures:
            raise ValueError(
                f"nothing was captured at {state.name} yet: call the method inside `with bended.capture():` first"
            )
        captured = self.captures[state.name].to(device=x.device, dtype=x.dtype)
        return mix_batch(captured, capture_weights, self.softmax, "capture_weights")
