"""Pictures of a model's output for the studio: image grids, audio, token text, tensor summaries.

>>> view = output_view(bended.decode(z=z))      # a View: kind "image", png bytes
>>> view.kind, len(view.png)
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ...plot import image_grid


@dataclass
class View:
    """An output made showable: `kind` is "image", "audio", "text" or "summary"."""

    kind: str
    text: str = ""  # the summary line, or the decoded tokens
    png: bytes | None = None  # image grid, or waveform + spectrogram for audio
    wav: bytes | None = None  # audio, 16-bit PCM
    stats: dict[str, Any] = field(default_factory=dict)
    zoom: int = 1  # how many screen pixels per image pixel the page shows


def first_tensor(output: Any) -> torch.Tensor | None:
    """The output itself if a tensor, else the first tensor in a tuple, list or dict."""
    if isinstance(output, torch.Tensor):
        return output
    items = output.values() if isinstance(output, dict) else output if isinstance(output, (list, tuple)) else ()
    for item in items:
        found = first_tensor(item)
        if found is not None:
            return found
    return None


def summary(x: torch.Tensor) -> dict[str, Any]:
    """Shape, dtype and, for numbers, min / max / mean / std."""
    stats: dict[str, Any] = {"shape": tuple(x.shape), "dtype": str(x.dtype).replace("torch.", "")}
    if x.numel() and (x.is_floating_point() or not x.dtype.is_complex):
        f = x.detach().float()
        stats.update(
            min=float(f.min()), max=float(f.max()), mean=float(f.mean()), std=float(f.std()) if f.numel() > 1 else 0.0
        )
    return stats


def summary_text(stats: dict[str, Any]) -> str:
    parts = [f"shape {stats['shape']}", stats["dtype"]]
    parts += [f"{k} {stats[k]:.4g}" for k in ("min", "max", "mean", "std") if k in stats]
    return ", ".join(parts)


def png_bytes(array: np.ndarray, scale: int = 1) -> bytes:
    """A (H, W) or (H, W, 3) array in [0, 1] as PNG, enlarged `scale` times without smoothing."""
    from PIL import Image

    pixels = (np.clip(array, 0, 1) * 255).round().astype(np.uint8)
    image = Image.fromarray(pixels)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def wav_bytes(audio: torch.Tensor, sample_rate: int) -> bytes:
    """(C, T) audio as 16-bit PCM WAV; peaks above 1 are normalised."""
    x = audio.detach().float().cpu().numpy()
    peak = float(np.abs(x).max()) if x.size else 0.0
    if peak > 1:
        x = x / peak
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").T.copy()
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(x.shape[0])
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return out.getvalue()


def audio_png(audio: torch.Tensor, sample_rate: int) -> bytes:
    """Waveform above spectrogram of the first channel (matplotlib)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    x = audio.detach().float().cpu().numpy()[0]
    fig = Figure(figsize=(6, 3.2), dpi=80)
    wave_ax, spec_ax = fig.subplots(2, 1, sharex=True)
    t = np.arange(x.size) / sample_rate
    wave_ax.plot(t, x, linewidth=0.5)
    wave_ax.set_ylabel("amplitude")
    if x.size >= 256:
        spec_ax.specgram(x, NFFT=256, Fs=sample_rate, noverlap=128)
    spec_ax.set_xlabel("seconds")
    spec_ax.set_ylabel("Hz")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def output_view(output: Any, sample_rate: int = 44100, decode_tokens: Any = None, image_scale: int = 1) -> View:
    """Classify and picture an output: 4-D -> image grid, 3-D float (B, C, T) -> audio,
    integer tensor -> tokens as text (through `decode_tokens` if given), anything else -> summary."""
    x = first_tensor(output)
    if x is None:
        return View("summary", text=f"{type(output).__name__} output (no tensor)")
    stats = summary(x)
    text = summary_text(stats)
    if x.is_floating_point() and x.ndim == 4:
        grid = image_grid(x)
        zoom = max(1, 360 // max(grid.shape[:2]))  # small images are enlarged by the page, not in the PNG
        return View("image", text=text, png=png_bytes(grid, image_scale), stats=stats, zoom=zoom)
    if x.is_floating_point() and x.ndim == 3 and x.shape[-1] >= 16:
        return View("audio", text=text, png=audio_png(x[0], sample_rate), wav=wav_bytes(x[0], sample_rate), stats=stats)
    if not x.is_floating_point() and not x.is_complex() and x.dtype != torch.bool:
        rows = x.reshape(-1, x.shape[-1]) if x.ndim else x.reshape(1, 1)
        lines = [decode_tokens(r.tolist()) if decode_tokens else " ".join(map(str, r.tolist())) for r in rows]
        return View("text", text="\n".join(lines), stats=stats)
    return View("summary", text=text, stats=stats)
