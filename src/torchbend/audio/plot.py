"""Pictures of sounds: waveforms, spectrograms, and one spectrogram per bend (matplotlib; works headless).

    >>> fig = plot_spectrogram(wav, 16000, path="spec.png")
    >>> fig = plot_audio_activations([plain, bent], 16000, titles=["plain", "bent"], display=True)

``display=True`` shows the figure inline in a notebook (and returns None); `plot_audio_activations`
also shows an audio player under each row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..plot import _figure, _finish


def _mono(wav: torch.Tensor) -> torch.Tensor:
    """First item, first channel, as (samples,)."""
    x = torch.as_tensor(wav).detach().float().cpu()
    while x.ndim > 1:
        x = x[0]
    return x


def spectrogram(wav: torch.Tensor, n_fft: int = 1024, hop: int | None = None) -> torch.Tensor:
    """Magnitude in dB (frequencies, frames) of the first channel of ``wav``, by an STFT with a Hann window."""
    x = _mono(wav)
    n_fft = min(n_fft, max(16, 2 ** (x.shape[-1].bit_length() - 1)))
    magnitude = torch.stft(x, n_fft, hop or n_fft // 4, window=torch.hann_window(n_fft), return_complex=True).abs()
    return 20 * torch.log10(magnitude.clamp(min=1e-5))


def _draw_spectrogram(ax: Any, wav: torch.Tensor, sample_rate: int, n_fft: int) -> Any:
    spec = spectrogram(wav, n_fft)
    duration = _mono(wav).shape[-1] / sample_rate
    return ax.imshow(
        spec.numpy(),
        origin="lower",
        aspect="auto",
        cmap="magma",
        vmin=-100,
        vmax=max(0.0, float(spec.max())),
        extent=(0, duration, 0, sample_rate / 2),
        interpolation="nearest",
    )


def plot_waveform(
    wav: torch.Tensor, sample_rate: int, display: bool = False, path: str | Path | None = None, title: str | None = None
) -> Any:
    """The first channel of ``wav`` against time in seconds; returns the matplotlib Figure."""
    x = _mono(wav)
    fig = _figure(8.0, 2.5)
    ax = fig.subplots()
    ax.plot(torch.arange(len(x)).numpy() / sample_rate, x.numpy(), linewidth=0.6)
    ax.set_xlabel("time (s)")
    ax.set_ylim(-1.05, 1.05)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return _finish(fig, display, path)


def plot_spectrogram(
    wav: torch.Tensor,
    sample_rate: int,
    n_fft: int = 1024,
    display: bool = False,
    path: str | Path | None = None,
    title: str | None = None,
) -> Any:
    """The dB spectrogram of the first channel of ``wav`` (time in s, frequency in Hz); returns the Figure."""
    fig = _figure(8.0, 3.0)
    ax = fig.subplots()
    image = _draw_spectrogram(ax, wav, sample_rate, n_fft)
    fig.colorbar(image, ax=ax, label="dB")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("frequency (Hz)")
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return _finish(fig, display, path)


def plot_audio_activations(
    outs: torch.Tensor | Sequence[torch.Tensor],
    sample_rate: int,
    titles: Sequence[str] | None = None,
    display: bool = False,
    path: str | Path | None = None,
    n_fft: int = 1024,
) -> Any:
    """One spectrogram row per sound in ``outs`` (e.g. one per bend); returns the matplotlib Figure.

    The audio counterpart of `torchbend.plot.plot_image_activations`. With ``display=True`` the
    figure and an audio player per row are shown in the notebook, and None is returned.
    """
    sounds = [outs] if isinstance(outs, torch.Tensor) else list(outs)
    if not sounds:
        raise ValueError("plot_audio_activations needs at least one sound")
    if titles is not None and len(titles) != len(sounds):
        raise ValueError(f"got {len(titles)} titles for {len(sounds)} sounds")
    fig = _figure(9.0, 1.8 * len(sounds) + 0.4)
    axes = fig.subplots(len(sounds), 1, squeeze=False, sharex=True)
    for i, (ax, wav) in enumerate(zip(axes[:, 0], sounds)):
        _draw_spectrogram(ax, wav, sample_rate, n_fft)
        ax.set_ylabel("Hz")
        if titles is not None:
            ax.set_title(titles[i], fontsize=10, loc="left")
    axes[-1, 0].set_xlabel("time (s)")
    result = _finish(fig, display, path)
    if display:
        from IPython.display import HTML, Audio
        from IPython.display import display as show

        for i, wav in enumerate(sounds):
            if titles is not None:
                show(HTML(f"<b>{titles[i]}</b>"))
            show(Audio(_mono(wav).clamp(-1, 1).numpy(), rate=sample_rate, normalize=False))
    return result
