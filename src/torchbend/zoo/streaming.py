"""A RAVE-like streaming audio model with random weights, for TorchScript examples, tests and benchmarks.

    >>> model = make_streaming_model(channels=8, latent=4, ratios=(4,))
    >>> scripted = torch.jit.script(model)          # encode / decode / forward are exported
    >>> scripted.decode(torch.randn(1, 4, 8)).shape
    torch.Size([1, 1, 32])

The encoder is strided Conv1d layers (one per ratio); the decoder is causal convolutions
whose left padding is the end of the previous buffer, kept in a buffer (as cached_conv does
for RAVE), and transposed convolutions that upsample by each ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import nn


class CachedConv1d(nn.Module):
    """A causal Conv1d padded on the left with the end of the previous buffer (kept in `cache`)."""

    if TYPE_CHECKING:  # buffers, for the type checker (TorchScript would read a class annotation)
        cache: torch.Tensor

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel)
        self.register_buffer("cache", torch.zeros(1, cin, kernel - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.cache.shape[0] != x.shape[0]:
            self.cache = torch.zeros(x.shape[0], x.shape[1], self.cache.shape[2])
        padded = torch.cat([self.cache, x], -1)
        self.cache = padded[..., -self.cache.shape[2] :].detach()
        return self.conv(padded)


class StreamingModel(nn.Module):
    """`encode` (audio -> latent, downsampled by prod(ratios)), `decode` (latent -> audio), `forward`."""

    def __init__(self, channels: int = 8, latent: int = 4, ratios: Sequence[int] = (4,)) -> None:
        super().__init__()
        encoder: list[nn.Module] = []
        cin = 1
        for r in ratios:
            encoder += [nn.Conv1d(cin, channels, r, stride=r), nn.LeakyReLU(0.2)]
            cin = channels
        self.encoder = nn.Sequential(*encoder, nn.Conv1d(channels, latent, 1))
        decoder: list[nn.Module] = [CachedConv1d(latent, channels, 3), nn.LeakyReLU(0.2)]
        for r in reversed(ratios):
            decoder += [
                nn.ConvTranspose1d(channels, channels, r, stride=r),
                nn.LeakyReLU(0.2),
                CachedConv1d(channels, channels, 3),
                nn.LeakyReLU(0.2),
            ]
        self.decoder = nn.Sequential(*decoder, CachedConv1d(channels, 1, 3), nn.Tanh())

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def make_streaming_model(
    channels: int = 8, latent: int = 4, ratios: Sequence[int] = (4,), seed: int = 0
) -> StreamingModel:
    """A `StreamingModel` in eval mode with weights drawn from `seed`."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return StreamingModel(channels, latent, ratios).eval()
