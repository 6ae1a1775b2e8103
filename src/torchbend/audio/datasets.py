"""A synthetic audio set, regenerated offline from a seed: pitched notes and noise bursts.

    >>> clips = torchbend.audio.datasets.synthetic_audio(4, seed=1)     # (4, 1, 16384) in [-1, 1]
    >>> clips.shape
    torch.Size([4, 1, 16384])

Each clip holds one or two events. A note has a fundamental between 55 Hz and about 1.2 kHz, a
timbre (sine, saw-like, square-like or a random harmonic rolloff), a little vibrato and an
attack / decay / sustain / release envelope. A noise burst is white noise band-passed at random
with an exponential decay. Nothing is downloaded; the same seed gives the same clips.
"""

from __future__ import annotations

import math

import torch

SAMPLE_RATE = 16000
CLIP_LENGTH = 16384
TRAIN_SEED = 0
TEST_SEED = 1


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=g).item()


def _envelope(g: torch.Generator, length: int, sample_rate: int) -> torch.Tensor:
    """Attack / decay / sustain / release, starting and ending at random places in the clip."""
    t = torch.arange(length) / sample_rate
    start = _uniform(g, 0.0, 0.3) * length / sample_rate
    duration = _uniform(g, 0.2, 0.9) * length / sample_rate
    attack, decay = _uniform(g, 0.002, 0.08), _uniform(g, 0.03, 0.3)
    sustain, release = _uniform(g, 0.1, 1.0), _uniform(g, 0.02, 0.3)
    local = t - start
    rise = (local / attack).clamp(0, 1)
    fall = sustain + (1 - sustain) * torch.exp(-(local - attack).clamp(min=0) / decay)
    tail = torch.exp(-(local - duration).clamp(min=0) / release)
    return torch.where(local < 0, torch.zeros(()), rise * fall * tail)


def _note(g: torch.Generator, length: int, sample_rate: int) -> torch.Tensor:
    f0 = 55.0 * 2 ** _uniform(g, 0.0, 4.5)
    t = torch.arange(length) / sample_rate
    vibrato = 1 + _uniform(g, 0.0, 0.01) * torch.sin(2 * math.pi * _uniform(g, 3.0, 7.0) * t)
    phase = 2 * math.pi * torch.cumsum(f0 * vibrato / sample_rate, 0)
    n = torch.arange(1, min(40, int(sample_rate / 2 / (f0 * 1.02))) + 1).float()
    timbre = int(torch.randint(4, (), generator=g))
    if timbre == 0:  # sine, with a faint second harmonic
        amps = torch.where(n == 1, 1.0, torch.where(n == 2, 0.1, 0.0))
    elif timbre == 1:  # saw-like
        amps = 1 / n
    elif timbre == 2:  # square-like: odd harmonics
        amps = torch.where(n % 2 == 1, 1 / n, torch.zeros(()))
    else:  # random rolloff and jitter
        amps = n ** -_uniform(g, 0.5, 2.5) * (0.3 + 0.7 * torch.rand(len(n), generator=g))
    offsets = 2 * math.pi * torch.rand(len(n), 1, generator=g)
    wave = (amps[:, None] * torch.sin(n[:, None] * phase + offsets)).sum(0)
    return wave / wave.abs().max().clamp(min=1e-6) * _envelope(g, length, sample_rate)


def _noise_burst(g: torch.Generator, length: int, sample_rate: int) -> torch.Tensor:
    spectrum = torch.fft.rfft(torch.randn(length, generator=g))
    freqs = torch.fft.rfftfreq(length, 1 / sample_rate)
    low = 20 * 2 ** _uniform(g, 0.0, 8.0)
    high = min(low * 2 ** _uniform(g, 1.0, 6.0), sample_rate / 2)
    noise = torch.fft.irfft(spectrum * ((freqs >= low) & (freqs <= high)), length)
    t = torch.arange(length) / sample_rate
    start = _uniform(g, 0.0, 0.6) * length / sample_rate
    local = t - start
    envelope = torch.where(
        local < 0, torch.zeros(()), (local / 0.002).clamp(max=1) * torch.exp(-local / _uniform(g, 0.02, 0.4))
    )
    return noise / noise.abs().max().clamp(min=1e-6) * envelope


def synthetic_clip(g: torch.Generator, length: int = CLIP_LENGTH, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """One clip (length,): one or two notes or noise bursts, peak between 0.1 and 0.9."""
    clip = torch.zeros(length)
    for _ in range(int(torch.randint(1, 3, (), generator=g))):
        event = _note if torch.rand((), generator=g).item() < 0.7 else _noise_burst
        clip = clip + _uniform(g, 0.3, 1.0) * event(g, length, sample_rate)
    return clip / clip.abs().max().clamp(min=1e-6) * _uniform(g, 0.1, 0.9)


def synthetic_audio(
    n: int, length: int = CLIP_LENGTH, sample_rate: int = SAMPLE_RATE, seed: int = TEST_SEED
) -> torch.Tensor:
    """``n`` clips as a (n, 1, length) float tensor; the same seed gives the same clips.

    Training draws from seed 0 (`TRAIN_SEED`), evaluation from seed 1 (`TEST_SEED`).
    """
    g = torch.Generator().manual_seed(seed)
    return torch.stack([synthetic_clip(g, length, sample_rate) for _ in range(n)])[:, None]
