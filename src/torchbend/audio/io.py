"""Reading and writing sound files (soundfile), resampling with torch.

>>> wav = read("in.wav", sample_rate=16000)      # (channels, samples), float32 in [-1, 1]
>>> write("out.wav", wav, 16000)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, overload

import torch


def _soundfile() -> Any:
    try:
        import soundfile
    except ImportError:
        raise ImportError("reading and writing audio needs soundfile: pip install 'torchbend[audio]'") from None
    return soundfile


def resample(wav: torch.Tensor, source_rate: int, target_rate: int) -> torch.Tensor:
    """``wav`` (..., samples) from ``source_rate`` to ``target_rate``, by Fourier resampling (band-limited)."""
    if source_rate <= 0 or target_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {source_rate} and {target_rate}")
    if source_rate == target_rate:
        return wav
    n_in = wav.shape[-1]
    n_out = max(1, round(n_in * target_rate / source_rate))
    spectrum = torch.fft.rfft(wav.double(), dim=-1)
    bins = n_out // 2 + 1
    if bins <= spectrum.shape[-1]:
        spectrum = spectrum[..., :bins]
    else:
        spectrum = torch.nn.functional.pad(spectrum, (0, bins - spectrum.shape[-1]))
    return (torch.fft.irfft(spectrum, n_out, dim=-1) * (n_out / n_in)).to(wav.dtype)


FULL_SCALE = 0.999  # a sample at or beyond it is clipped when written, or was saturated by the model (a tanh)


def limit_peak(wav: torch.Tensor, peak: float = 0.99) -> tuple[torch.Tensor, int]:
    """``wav`` scaled down so that its peak is at most ``peak``, and how many of its samples were at full scale.

        >>> loud, at_full_scale = limit_peak(torch.tensor([0.5, -2.0, 1.5]))   # two samples beyond [-1, 1]
        >>> at_full_scale, round(float(loud.abs().max()), 2)
        (2, 0.99)

    Samples at full scale are those with ``|x| >= FULL_SCALE``: clipped if written as they are, or saturated
    already (a model whose output is a tanh). A sound within ``peak`` comes back as it is.
    """
    if not 0 < peak <= 1:
        raise ValueError(f"peak is in (0, 1], got {peak!r}")
    top = float(wav.abs().max()) if wav.numel() else 0.0
    at_full_scale = int((wav.abs() >= FULL_SCALE).sum())
    return (wav * (peak / top) if top > peak else wav), at_full_scale


@overload
def read(path: str | Path, sample_rate: None = None) -> tuple[torch.Tensor, int]: ...
@overload
def read(path: str | Path, sample_rate: int) -> torch.Tensor: ...
def read(path: str | Path, sample_rate: int | None = None) -> tuple[torch.Tensor, int] | torch.Tensor:
    """The sound in ``path`` as a (channels, samples) float32 tensor.

    With ``sample_rate`` it is resampled to that rate and only the tensor is returned; without,
    ``(tensor, file_rate)`` is returned.
    """
    data, rate = _soundfile().read(str(path), dtype="float32", always_2d=True)
    wav = torch.from_numpy(data.T.copy())
    if sample_rate is None:
        return wav, rate
    return resample(wav, rate, sample_rate)


def write(path: str | Path, wav: torch.Tensor, sample_rate: int) -> Path:
    """Write ``wav`` ((samples,), (channels, samples) or (1, channels, samples)) as a 16-bit file; returns the path."""
    x = torch.as_tensor(wav).detach().float().cpu()
    while x.ndim > 2 and x.shape[0] == 1:
        x = x[0]
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2:
        raise ValueError(f"write takes (samples,), (channels, samples) or (1, channels, samples), got {tuple(x.shape)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _soundfile().write(str(path), x.clamp(-1, 1).T.numpy(), int(sample_rate), subtype="PCM_16")
    return path
