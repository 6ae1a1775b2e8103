"""A small streaming audio autoencoder in the style of RAVE and DDSP, trained on `torchbend.audio.datasets`.

    >>> vae = load_audio_vae()                        # 16 kHz, caches ready, in eval mode
    >>> z = vae.encode(torch.zeros(1, 1, 2048))       # (1, 8, 8): 8 latent channels, one frame per 256 samples
    >>> vae.decode(z).shape
    torch.Size([1, 1, 2048])
    >>> vae.reset_cache()                             # forget the past before an unrelated stream

The encoder takes a short-time spectrum (1024-sample Hann window, one frame per ``compression_ratio``
= 256 samples), measures the pitch of each frame (latent 0, ``log2(f0 / 440)``) and maps the log
spectrum through convolutions to the posterior of the other latents. The decoder sums two branches: a
harmonic oscillator at the pitch of latent 0 whose harmonics' amplitudes the latents set (as DDSP's
harmonic synthesiser), and a waveform branch of transposed convolutions with dilated residual blocks (as
RAVE's decoder); in the shipped weights the harmonic branch carries nearly all of the sound. Built with
``streaming=True`` (what `load_audio_vae` returns) every convolution is a cached convolution from the
``cached-conv`` package and the encoder's window and the oscillator's phase carry over: calls process
consecutive buffers of one stream, as nn~ models do, and decoding a latent chunk by chunk gives the same
audio as decoding it whole. Built with ``streaming=False`` the same weights run as ordinary causal
convolutions (used for training).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

SAMPLE_RATE = 16000
RATIOS = (4, 4, 4, 4)
CHANNELS = (16, 32, 64, 96)
LATENT_SIZE = 8
WIDTH = 256  # channels of the encoder and of the harmonics' amplitude network, which run once per frame
WINDOW = 1024  # samples per spectrum frame of the encoder
HARMONICS = 64
PITCH_RANGE, PITCH_STEPS = (50.0, 1600.0), 48  # fundamentals the encoder looks for, candidates per octave

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
        y = y[..., : -2 * self.padding[0]]  # type: ignore[misc]  # an int padding (typed tuple | str)
        return y + self.bias.unsqueeze(-1)  # type: ignore[union-attr]  # built with a bias


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


class Spectrum(nn.Module):
    """Magnitudes of a short-time Fourier transform, one frame per ``hop`` samples (not trained).

    Each frame is the last ``window`` samples up to its end (causal: the ``window - hop`` samples before
    a call come from ``padding``, a cache when streaming, zeros otherwise), Hann-windowed and transformed
    zero-padded to ``oversampling * window`` points, so bins lie ``oversampling`` times closer than the
    window alone gives. A full-scale sine gives a magnitude of 0.5 at its bin.
    """

    def __init__(self, hop: int, streaming: bool, window: int = WINDOW, oversampling: int = 2) -> None:
        super().__init__()
        self.hop, self.window, self.oversampling = hop, window, oversampling
        past = window - hop
        self.padding = _cached_conv().CachedPadding1d(past) if streaming else nn.ConstantPad1d((past, 0), 0.0)
        hann = torch.hann_window(window, periodic=True)
        self.register_buffer("taper", hann / hann.sum(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        frames = self.padding(x).unfold(-1, self.window, self.hop)[:, 0] * self.taper  # (batch, frames, window)
        spectrum = torch.fft.rfft(frames, n=self.oversampling * self.window)
        return (spectrum.real.pow(2) + spectrum.imag.pow(2) + 1e-8).sqrt().transpose(1, 2)  # (batch, bins, frames)


class Pitch(nn.Module):
    """The fundamental of each spectrum frame as ``log2(f0 / 440)``, by harmonic summation (not trained).

    Each candidate fundamental (``PITCH_STEPS`` per octave over ``PITCH_RANGE``) scores the magnitudes at its
    first harmonics, weighted down with the harmonic number so that an octave below never wins; the best
    candidate is the pitch, refined between candidates by a parabola. In silence or noise the pitch is
    whatever scores best; the other latents set how loud the harmonics are there.
    """

    if TYPE_CHECKING:  # buffers, for the type checker (TorchScript would read a class annotation)
        comb: torch.Tensor
        candidates: torch.Tensor

    def __init__(self, size: int = 2 * WINDOW, harmonics: int = 8, decay: float = 0.8) -> None:
        super().__init__()
        low, high = PITCH_RANGE
        count = round(math.log2(high / low) * PITCH_STEPS) + 1
        candidates = low * 2 ** (torch.arange(count, dtype=torch.float64) / PITCH_STEPS)
        positions = candidates[:, None] * torch.arange(1, harmonics + 1) / SAMPLE_RATE * size  # in bins
        weights = decay ** torch.arange(harmonics, dtype=torch.float64) * (positions < size // 2)
        comb = torch.zeros(count, size // 2 + 1, dtype=torch.float64)
        below = positions.floor().long().clamp(max=size // 2 - 1)
        above_share = positions - below
        comb.scatter_add_(1, below, weights * (1 - above_share))
        comb.scatter_add_(1, below + 1, weights * above_share)
        self.register_buffer("comb", comb.float(), persistent=False)
        self.register_buffer("candidates", torch.log2(candidates / 440).float(), persistent=False)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        # square roots compress loud harmonics; the floor keeps faint sidelobes from steering the parabola below
        scores = torch.matmul(self.comb, (magnitude + 1e-2).sqrt())  # (batch, candidates, frames)
        # scores within 0.1% of the best tie, and the lowest candidate wins: the pitch does not flip between
        # near-equal candidates on rounding noise (chunked and whole calls, streaming and plain convolutions)
        best = torch.round(1000 * scores / scores.amax(1, keepdim=True)).argmax(1, keepdim=True)
        # then a parabola through the best score and its neighbours places the peak between candidates
        last = scores.shape[1] - 1
        below = scores.gather(1, (best - 1).clamp(0, last))
        at = scores.gather(1, best)
        above = scores.gather(1, (best + 1).clamp(0, last))
        curvature = below - 2 * at + above
        inside = (best > 0) & (best < last) & (curvature < 0)
        shift = torch.where(inside, 0.5 * (below - above) / curvature.clamp(max=-1e-12), torch.zeros_like(at))
        return self.candidates[best] + shift.clamp(-0.5, 0.5) / PITCH_STEPS  # (batch, 1, frames)


class Encoder(nn.Module):
    """Spectrum frames to the pitch (latent 0, measured) and a posterior mean and pre-scale for the others."""

    def __init__(self, streaming: bool, width: int = WIDTH, latent_size: int = LATENT_SIZE) -> None:
        super().__init__()
        self.spectrum = Spectrum(math.prod(RATIOS), streaming)
        self.pitch = Pitch(WINDOW * self.spectrum.oversampling)
        bins = WINDOW // 2 + 1
        self.net = nn.Sequential(
            _conv(bins, width, 3, streaming),
            nn.LeakyReLU(0.2),
            _conv(width, width, 3, streaming),
            nn.LeakyReLU(0.2),
            _conv(width, 2 * (latent_size - 1), 1, streaming),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        magnitude = self.spectrum(x)
        plain = magnitude[:, :: self.spectrum.oversampling]  # the bins of the window alone
        return self.pitch(magnitude), self.net(((plain + 1e-4).log() + 5) / 3)  # log magnitude near [-1, 2]


def exp_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """A positive amplitude from a logit, as DDSP makes them: ``sigmoid(x) ** ln(10)``, at most 1."""
    return torch.sigmoid(x).pow(math.log(10)) + 1e-7


class Harmonics(nn.Module):
    """A harmonic oscillator at the pitch of latent 0, its harmonics' amplitudes set by the latent: the tonal branch.

    ``amplitude`` maps each latent frame to one amplitude per harmonic (harmonics above half the sample
    rate are silent). Within a frame the pitch and the amplitudes glide linearly from the previous frame's.
    When streaming, the oscillator's phase and the last frame carry over from call to call (``phase_cache``,
    ``pitch_cache``, ``amplitude_cache``), so a steady latent gives a steady tone across buffers.
    """

    if TYPE_CHECKING:  # buffers, for the type checker (TorchScript would read a class annotation)
        numbers: torch.Tensor
        glide: torch.Tensor
        phase_cache: torch.Tensor
        pitch_cache: torch.Tensor
        amplitude_cache: torch.Tensor

    def __init__(self, latent_size: int, hop: int, streaming: bool, count: int = HARMONICS, width: int = WIDTH) -> None:
        super().__init__()
        self.streaming = streaming
        self.hop = hop
        self.register_buffer("numbers", torch.arange(1, count + 1, dtype=torch.float64)[:, None], persistent=False)
        self.register_buffer("glide", (torch.arange(hop) + 0.5) / hop, persistent=False)
        self.amplitude = nn.Sequential(
            _conv(latent_size, width, 3, streaming),
            nn.LeakyReLU(0.2),
            _conv(width, width, 3, streaming),
            nn.LeakyReLU(0.2),
            _conv(width, count, 1, streaming),
        )
        with torch.no_grad():
            self.amplitude[-1].bias.fill_(-2.0)  # type: ignore[operator]  # a conv's bias (typed Tensor | Module)  # each harmonic starts near 1% of full scale
        if streaming:
            batch = _cached_conv().MAX_BATCH_SIZE
            self.register_buffer("phase_cache", torch.zeros(batch, 1, 1), persistent=False)
            self.register_buffer("pitch_cache", torch.zeros(batch, 1, 1), persistent=False)
            self.register_buffer("amplitude_cache", torch.zeros(batch, count, 1), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        batch, frames = z.shape[0], z.shape[-1]
        frequency = 440 * torch.exp2(z[:, :1].clamp(-4.0, 4.0)) / SAMPLE_RATE  # cycles per sample, per frame
        amplitude = exp_sigmoid(self.amplitude(z))  # (batch, harmonics, frames)
        if self.streaming:
            start = self.phase_cache[:batch].double()
            previous_frequency = torch.cat([self.pitch_cache[:batch], frequency[..., :-1]], -1)
            previous_amplitude = torch.cat([self.amplitude_cache[:batch], amplitude[..., :-1]], -1)
            self.pitch_cache[:batch].copy_(frequency[..., -1:])
            self.amplitude_cache[:batch].copy_(amplitude[..., -1:])
        else:  # as a fresh stream starts
            start = torch.zeros_like(frequency[..., :1], dtype=torch.float64)
            previous_frequency = F.pad(frequency[..., :-1], (1, 0))
            previous_amplitude = F.pad(amplitude[..., :-1], (1, 0))
        glide = self.glide.to(z)
        numbers = self.numbers.to(z)
        # the fundamental's phase in turns, summed in float64 so that it stays exact over long streams
        sample_frequency = previous_frequency.unsqueeze(-1) * (1 - glide) + frequency.unsqueeze(-1) * glide
        turns = torch.cumsum(sample_frequency.flatten(-2).double(), -1)
        if self.streaming:
            self.phase_cache[:batch].copy_(torch.frac(start + turns[..., -1:]))
        phase = torch.frac(start + turns - sample_frequency.flatten(-2)).to(z).view(batch, frames, 1, self.hop)
        sines = torch.sin(2 * math.pi * torch.frac(numbers * phase))  # (batch, frames, harmonics, hop)
        audible = (numbers * torch.maximum(previous_frequency, frequency) < 0.5).to(z)  # under half the rate
        weights = torch.stack([previous_amplitude * audible, amplitude * audible], 1).permute(0, 3, 1, 2)
        fading, rising = torch.matmul(weights, sines).unbind(-2)  # each (batch, frames, hop)
        return (fading * (1 - glide) + rising * glide).reshape(batch, 1, frames * self.hop)


class Decoder(nn.Module):
    """The waveform branch (transposed convolutions and residual blocks) plus the harmonic branch, summed."""

    def __init__(
        self, streaming: bool, channels: tuple[int, ...] = CHANNELS, latent_size: int = LATENT_SIZE, width: int = WIDTH
    ) -> None:
        super().__init__()
        self.harmonics = Harmonics(latent_size, math.prod(RATIOS), streaming, width=width)
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
        return torch.tanh(self.net(z) + self.harmonics(z))


class AudioVAE(nn.Module):
    """``encode(x) -> z``, ``decode(z) -> x``, ``forward(x) -> decode(encode(x))``; x is (batch, 1, samples).

    ``samples`` must be a multiple of ``compression_ratio``; ``z`` is (batch, latent_size, samples / ratio).
    Latent 0 is the pitch in octaves from A440 (``z[:, 0] += 1`` plays an octave higher); the others are learned.
    `channels` (one width per stage of the waveform branch), `latent_size` and `width` (the channels of the
    networks that run once per frame) size the model; the shipped weights fit the defaults.
    """

    sample_rate: int = SAMPLE_RATE
    compression_ratio: int = int(torch.tensor(RATIOS).prod())
    latent_size: int = LATENT_SIZE

    def __init__(
        self,
        streaming: bool = True,
        channels: tuple[int, ...] = CHANNELS,
        latent_size: int = LATENT_SIZE,
        width: int = WIDTH,
    ) -> None:
        super().__init__()
        if len(channels) != len(RATIOS):
            raise ValueError(f"channels needs one width per stage ({len(RATIOS)}), got {channels!r}")
        if latent_size < 2:
            raise ValueError(f"latent_size must be at least 2 (the pitch and one learned latent), got {latent_size}")
        self.streaming = streaming
        self.latent_size = latent_size
        self.encoder = Encoder(streaming, width, latent_size)
        self.decoder = Decoder(streaming, tuple(channels), latent_size, width)

    def encode_distribution(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's mean and standard deviation, each (batch, latent_size, frames).

        Latent 0 is the pitch, ``log2(f0 / 440)``, measured rather than learned: its deviation is 0.
        """
        self._check_length(x)
        pitch, posterior = self.encoder(x)
        mean, pre_scale = posterior.chunk(2, dim=1)
        return torch.cat([pitch, mean], 1), torch.cat([torch.zeros_like(pitch), F.softplus(pre_scale) + 1e-4], 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The latent trajectory (its posterior mean)."""
        return self.encode_distribution(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def _check_length(self, x: torch.Tensor) -> None:
        if x.dim() != 3 or x.shape[1] != 1 or x.shape[-1] % self.compression_ratio:
            raise ValueError(
                f"expected audio of shape (batch, 1, samples) with samples a multiple of "
                f"{self.compression_ratio}, got {tuple(x.shape)}"
            )

    @torch.no_grad()
    def reset_cache(self) -> None:
        """Zero every streaming cache, so that the next call starts a new stream (no-op when not streaming)."""
        for name, buffer in self.named_buffers():
            if name.endswith(("pad", "cache")):
                buffer.zero_()

    @torch.no_grad()
    def warm_up(self) -> AudioVAE:
        """Create the caches (cached convolutions make them on their first call), then zero them."""
        self.decode(self.encode(torch.zeros(1, 1, self.compression_ratio)))
        self.reset_cache()
        return self


def make_audio_vae(
    streaming: bool = True, channels: tuple[int, ...] = CHANNELS, latent_size: int = LATENT_SIZE, width: int = WIDTH
) -> AudioVAE:
    """The architecture with fresh random weights (see `load_audio_vae` for trained ones); `channels`,
    `latent_size` and `width` make larger or smaller variants, e.g. ``channels=(128, 256, 512, 1024),
    latent_size=128, width=1024`` for one about the size of a RAVE v2 (random weights, for benchmarks)."""
    return AudioVAE(streaming, channels, latent_size, width)


def load_audio_vae(streaming: bool = True) -> AudioVAE:
    """The audio model with the trained weights shipped in the package, in eval mode, caches created and zeroed.

    The weights come from ``python -m torchbend.zoo.train_audio_vae``.
    """
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    vae = make_audio_vae(streaming)
    missing = set(vae.state_dict()) - set(state)
    if missing:
        raise ValueError(
            f"{WEIGHTS} does not fit this model: it lacks {sorted(missing)[:3]}; "
            "retrain with python -m torchbend.zoo.train_audio_vae"
        )
    vae.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    vae.eval()
    return vae.warm_up() if streaming else vae
