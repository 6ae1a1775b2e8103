"""A small streaming audio autoencoder in the style of RAVE, trained on `torchbend.audio_datasets`.

    >>> vae = load_audio_vae()                        # 16 kHz, caches ready, in eval mode
    >>> z = vae.encode(torch.zeros(1, 1, 2048))       # (1, 8, 8): 8 latent channels, one frame per 256 samples
    >>> vae.decode(z).shape
    torch.Size([1, 1, 2048])
    >>> vae.reset_cache()                             # forget the past before an unrelated stream

The encoder is a stack of strided causal convolutions (ratios 4, 4, 4, 4) down to ``latent_size``
channels at ``sample_rate / compression_ratio`` frames per second; the decoder mirrors it with
transposed convolutions, each followed by a residual block of dilated convolutions. Built with
``streaming=True`` (what `load_audio_vae` returns) every convolution is a cached convolution from
the ``cached-conv`` package: calls process consecutive buffers of one stream, as nn~ models do,
and decoding a latent chunk by chunk gives the same audio as decoding it whole. Built with
``streaming=False`` the same weights run as ordinary causal convolutions (used for training).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

SAMPLE_RATE = 16000
RATIOS = (4, 4, 4, 4)
CHANNELS = (16, 32, 64, 96)
LATENT_SIZE = 8

WEIGHTS = Path(__file__).with_name("weights") / "audio_vae.pt"


def _cached_conv():
    try:
        import cached_conv
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("the audio model needs cached-conv: pip install 'torchbend[audio]'") from error
    return cached_conv


class CroppedConvTranspose1d(nn.ConvTranspose1d):
    """The non-streaming twin of ``cached_conv.CachedConvTranspose1d``: same weights, same output on a whole signal."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = F.conv_transpose1d(x, self.weight, None, self.stride, 0, self.output_padding, self.groups, self.dilation)
        y = y[..., : -2 * self.padding[0]]
        return y + self.bias.unsqueeze(-1)


def _conv(c_in: int, c_out: int, kernel: int, streaming: bool, stride: int = 1, dilation: int = 1) -> nn.Module:
    cc = _cached_conv()
    padding = cc.get_padding(kernel, stride, dilation, mode="causal")
    kind = cc.CachedConv1d if streaming else cc.Conv1d
    return kind(c_in, c_out, kernel, stride=stride, dilation=dilation, padding=padding)


def _upsample(c_in: int, c_out: int, ratio: int, streaming: bool) -> nn.Module:
    kind = _cached_conv().CachedConvTranspose1d if streaming else CroppedConvTranspose1d
    return kind(c_in, c_out, 2 * ratio, stride=ratio, padding=ratio // 2)


class ResidualBlock(nn.Module):
    """``x + conv(act(conv(act(x))))`` with a dilated first convolution."""

    def __init__(self, channels: int, dilation: int, streaming: bool) -> None:
        super().__init__()
        self.conv0 = _conv(channels, channels, 3, streaming, dilation=dilation)
        self.conv1 = _conv(channels, channels, 1, streaming)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv1(F.leaky_relu(self.conv0(F.leaky_relu(x, 0.2)), 0.2))


class Encoder(nn.Module):
    def __init__(self, streaming: bool, channels: tuple[int, ...] = CHANNELS, latent_size: int = LATENT_SIZE) -> None:
        super().__init__()
        self.net = nn.Sequential(_conv(1, channels[0], 7, streaming))
        c_in = channels[0]
        for i, (ratio, c) in enumerate(zip(RATIOS, channels)):
            self.net.add_module(f"act{i}", nn.LeakyReLU(0.2))
            self.net.add_module(f"down{i}", _conv(c_in, c, 2 * ratio, streaming, stride=ratio))
            c_in = c
        self.net.add_module(f"act{len(RATIOS)}", nn.LeakyReLU(0.2))
        self.net.add_module("out", _conv(c_in, 2 * latent_size, 3, streaming))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, streaming: bool, channels: tuple[int, ...] = CHANNELS, latent_size: int = LATENT_SIZE) -> None:
        super().__init__()
        self.net = nn.Sequential(_conv(latent_size, channels[-1], 3, streaming))
        channels = (*reversed(channels), channels[0])
        for i, ratio in enumerate(reversed(RATIOS)):
            self.net.add_module(f"act{i}", nn.LeakyReLU(0.2))
            self.net.add_module(f"up{i}", _upsample(channels[i], channels[i + 1], ratio, streaming))
            self.net.add_module(f"res{i}a", ResidualBlock(channels[i + 1], 1, streaming))
            self.net.add_module(f"res{i}b", ResidualBlock(channels[i + 1], 3, streaming))
        self.net.add_module(f"act{len(RATIOS)}", nn.LeakyReLU(0.2))
        self.net.add_module("out", _conv(channels[-1], 1, 7, streaming))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(z))


class AudioVAE(nn.Module):
    """``encode(x) -> z``, ``decode(z) -> x``, ``forward(x) -> decode(encode(x))``; x is (batch, 1, samples).

    ``samples`` must be a multiple of ``compression_ratio``; ``z`` is (batch, latent_size, samples / ratio).
    `channels` (one width per stage) and `latent_size` size the model; the shipped weights fit the defaults.
    """

    sample_rate: int = SAMPLE_RATE
    compression_ratio: int = int(torch.tensor(RATIOS).prod())
    latent_size: int = LATENT_SIZE

    def __init__(self, streaming: bool = True, channels: tuple[int, ...] = CHANNELS,
                 latent_size: int = LATENT_SIZE) -> None:
        super().__init__()
        if len(channels) != len(RATIOS):
            raise ValueError(f"channels needs one width per stage ({len(RATIOS)}), got {channels!r}")
        self.streaming = streaming
        self.latent_size = latent_size
        self.encoder = Encoder(streaming, tuple(channels), latent_size)
        self.decoder = Decoder(streaming, tuple(channels), latent_size)

    def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's mean and standard deviation, each (batch, latent_size, frames)."""
        self._check_length(x)
        mean, pre_scale = self.encoder(x).chunk(2, dim=1)
        return mean, F.softplus(pre_scale) + 1e-4

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent trajectory (its posterior mean)."""
        return self.encode_distribution(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def _check_length(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[-1] % self.compression_ratio:
            raise ValueError(f"expected audio of shape (batch, 1, samples) with samples a multiple of "
                             f"{self.compression_ratio}, got {tuple(x.shape)}")

    @torch.no_grad()
    def reset_cache(self) -> None:
        """Zero every streaming cache, so that the next call starts a new stream (no-op when not streaming)."""
        for name, buffer in self.named_buffers():
            if name.rsplit(".", 1)[-1] in ("pad", "cache"):
                buffer.zero_()

    @torch.no_grad()
    def warm_up(self) -> AudioVAE:
        """Create the caches (cached convolutions make them on their first call), then zero them."""
        self.decode(self.encode(torch.zeros(1, 1, self.compression_ratio)))
        self.reset_cache()
        return self


def make_audio_vae(streaming: bool = True, channels: tuple[int, ...] = CHANNELS,
                   latent_size: int = LATENT_SIZE) -> AudioVAE:
    """The architecture with fresh random weights (see `load_audio_vae` for trained ones); `channels` and
    `latent_size` make larger or smaller variants, e.g. ``channels=(128, 256, 512, 1024), latent_size=128``
    for one about the size of a RAVE v2 (random weights, for benchmarks)."""
    return AudioVAE(streaming, channels, latent_size)


def load_audio_vae(streaming: bool = True) -> AudioVAE:
    """The audio model with the trained weights shipped in the package, in eval mode, caches created and zeroed.

    The weights come from ``python -m torchbend.zoo.train_audio_vae``.
    """
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    vae = make_audio_vae(streaming)
    vae.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    vae.eval()
    return vae.warm_up() if streaming else vae
