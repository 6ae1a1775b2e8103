"""Write a method's output to a file chosen by its suffix: a PNG grid, a WAV file, or a ``.pt`` tensor.

    >>> save_output(images, "bent.png")          # (B, C, H, W) or (B, H, W): one grid picture, tiles >= 256 px
    >>> save_output(images, "bent.png", scale=4) # each pixel drawn as 4 x 4 pixels
    >>> save_output(audio, "bent.wav", 44100)    # (B, C, T) or (C, T) or (T,): items one after another
    >>> save_output(anything, "bent.pt")         # tensors, lists, tuples and dicts of them

A ``.pt`` file holds only tensors and plain containers, so ``torch.load(path, weights_only=True)`` reads it.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BendingError
from ..extras import require
from ..plot import image_grid

SUFFIXES = (".png", ".wav", ".pt")
MIN_TILE = 256  # pixels: small images (MNIST's 28) are upscaled to at least this per tile unless a scale is given


class OutputError(BendingError):
    """An output that cannot be written in the asked format."""


def first_tensor(value: Any) -> torch.Tensor:
    """The tensor a method returned, or the first one in a tuple, list or dict it returned."""
    if isinstance(value, torch.Tensor):
        return value
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else []
    for item in items:
        if isinstance(item, torch.Tensor):
            return item
    raise OutputError(f"the output is a {type(value).__name__} holding no tensor")


def plain(value: Any) -> Any:
    """`value` with tensors detached onto the CPU and namedtuples / dataclasses turned into dicts and tuples."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return plain(dict(value._asdict()))
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value) if type(value) in (list, tuple) else [plain(v) for v in value]
    if isinstance(value, (int, float, bool, str)) or value is None:
        return value
    if hasattr(value, "__dataclass_fields__"):
        return {k: plain(getattr(value, k)) for k in value.__dataclass_fields__}
    raise OutputError(f"cannot save a {type(value).__name__} in a .pt file")


def png_scale(height: int, width: int, scale: int | None = None) -> int:
    """How many pixels each image pixel takes in a PNG grid: `scale`, else enough for `MIN_TILE`-pixel tiles.

    >>> png_scale(28, 28)
    10
    """
    if scale is None:
        return max(1, math.ceil(MIN_TILE / max(height, width, 1)))
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= 64:
        raise OutputError(f"the PNG scale is a whole number from 1 to 64 (pixels per image pixel), got {scale!r}")
    return scale


def save_png(images: torch.Tensor, path: Path, scale: int | None = None) -> None:
    x = images.detach().float().cpu()
    if x.ndim == 2:
        x = x[None, None]
    if x.ndim not in (3, 4):
        raise OutputError(f"a .png needs images (B, C, H, W) or (B, H, W), got shape {tuple(x.shape)}; save it as .pt")
    n = png_scale(x.shape[-2], x.shape[-1], scale)
    grid = (np.clip(image_grid(x), 0, 1) * 255).round().astype(np.uint8)
    grid = grid.repeat(n, axis=0).repeat(n, axis=1)  # nearest neighbour: every pixel stays a sharp square
    require("PIL.Image", "plot", "to write PNG files").fromarray(grid).save(path)


def save_wav(audio: torch.Tensor, path: Path, sample_rate: int) -> None:
    x = audio.detach().float().cpu()
    if x.ndim == 1:
        x = x[None]
    if x.ndim == 3:  # (B, C, T): the batch items one after another
        x = x.permute(1, 0, 2).reshape(x.shape[1], -1)
    if x.ndim != 2:
        raise OutputError(f"a .wav needs audio (B, C, T), (C, T) or (T,), got shape {tuple(x.shape)}")
    peak = float(x.abs().max())
    if peak > 1:
        x = x / peak
    samples = (x.clamp(-1, 1) * 32767).round().to(torch.int16).T.contiguous().numpy()
    try:
        import soundfile
    except ImportError:
        with wave.open(str(path), "wb") as out:
            out.setnchannels(samples.shape[1])
            out.setsampwidth(2)
            out.setframerate(sample_rate)
            out.writeframes(samples.tobytes())
    else:
        soundfile.write(str(path), samples, sample_rate, subtype="PCM_16")


def save_output(value: Any, path: str | Path, sample_rate: int = 44100, scale: int | None = None) -> Path:
    """Write `value` to `path` in the format its suffix names (one of `SUFFIXES`); `scale`: see `png_scale`."""
    path = Path(path)
    if path.suffix not in SUFFIXES:
        raise OutputError(f"cannot write {path.name}: the output file must end in {', '.join(SUFFIXES)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".pt":
        torch.save(plain(value), path)
    elif path.suffix == ".png":
        save_png(first_tensor(value), path, scale)
    else:
        save_wav(first_tensor(value), path, sample_rate)
    return path
