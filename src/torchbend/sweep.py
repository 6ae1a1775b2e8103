"""Sweeps and animations of a live parameter: one output per value, as a list, a strip or a GIF/MP4.

    >>> angle = tb.BendingParameter("angle", 0.0)
    >>> bended.bend(tb.Rotate(angle), "decoder_net_convt1", fn="decode")
    >>> outs = tb.sweep(bended, "decode", {"z": z}, angle, [0, 45, 90, 135])
    >>> tb.plot.strip(outs, titles=["0", "45", "90", "135"], path="strip.png")
    >>> tb.animate(bended, "decode", {"z": z}, "angle", sine(0, 90, 48), path="angle.gif")

Values are any sequence: `linear`, `sine` and `keyframes` make common curves. The parameter
gets its value back afterwards, also when a call fails.
"""

from __future__ import annotations

import math
import sys
import types
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .bending.parameter import BendingParameter


def linear(start: float, stop: float, n: int) -> list[float]:
    """`n` evenly spaced values from `start` to `stop`, both included."""
    return torch.linspace(float(start), float(stop), int(n)).tolist()


def sine(center: float, amplitude: float, n: int, periods: float = 1.0) -> list[float]:
    """`n` values of ``center + amplitude * sin(2 pi periods t)`` for t in [0, 1): a seamless loop."""
    return [center + amplitude * math.sin(2 * math.pi * periods * i / n) for i in range(int(n))]


def keyframes(points: Sequence[tuple[float, float]], n: int) -> list[float]:
    """`n` values through the (time, value) `points`, linearly interpolated between them."""
    if len(points) < 2:
        raise ValueError("keyframes needs at least two (time, value) points")
    times, values = zip(*sorted(points))
    return np.interp(np.linspace(times[0], times[-1], int(n)), times, values).tolist()


def _parameter(bended: Any, parameter: str | BendingParameter) -> BendingParameter:
    if isinstance(parameter, BendingParameter):
        return parameter
    known = bended.controllables
    if parameter not in known:
        raise KeyError(f"no bending parameter named {parameter!r} is in use; in use: {', '.join(known) or 'none'}")
    return known[parameter]


def sweep(bended: Any, fn: str, inputs: dict[str, Any], parameter: str | BendingParameter,
          values: Iterable[float], progress: bool = False) -> list[Any]:
    """Call method `fn` of `bended` on `inputs` once per value of `parameter`; the outputs, in value order."""
    param = _parameter(bended, parameter)
    method = getattr(bended, fn)
    values = list(values)
    if progress:
        from tqdm import tqdm

        values = tqdm(values, desc=f"{param.name}", unit="frame")
    saved = param.value
    outputs = []
    try:
        with torch.no_grad():
            for value in values:
                param.value = value
                outputs.append(method(**inputs))
    finally:
        param.value = saved
    return outputs


def _frame(output: Any, n_rows: int | None) -> np.ndarray:
    from .plot import image_grid

    tensor = getattr(output, "output", output)
    if isinstance(tensor, (tuple, list)):
        tensor = tensor[0]
    grid = image_grid(tensor, n_rows=n_rows)
    return (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)


def animate(bended: Any, fn: str, inputs: dict[str, Any], parameter: str | BendingParameter,
            values: Iterable[float], path: str | Path = "out.gif", fps: int = 12, n_rows: int | None = None,
            scale: int = 4, progress: bool = True) -> Path:
    """Write a GIF or MP4 of the outputs of `fn` while `parameter` moves through `values`; return the path.

    Each frame is the batch of output images tiled into a grid, enlarged `scale` times. GIFs are
    written with Pillow; MP4 needs PyAV: ``pip install torchbend[video]``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"animate writes .gif or .mp4 files, got {path.name!r}")
    if suffix == ".mp4":
        try:
            import av
        except ImportError:
            raise ImportError("writing MP4 needs PyAV: pip install torchbend[video] (or write a .gif)") from None
    outputs = sweep(bended, fn, inputs, parameter, values, progress=progress)
    frames = [_frame(out, n_rows) for out in outputs]
    frames = [f.repeat(scale, axis=0).repeat(scale, axis=1) for f in frames]
    if frames and frames[0].ndim == 2:
        frames = [np.stack([f] * 3, axis=-1) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        images[0].save(path, save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)
    else:
        _write_mp4(av, path, frames, fps)
    return path


def _write_mp4(av: Any, path: Path, frames: list[np.ndarray], fps: int) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = (frames[0].shape[0] // 2 * 2, frames[0].shape[1] // 2 * 2)
        stream.pix_fmt = "yuv420p"
        for f in frames:
            image = np.ascontiguousarray(f[: stream.height, : stream.width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


class _CallableModule(types.ModuleType):
    """`tb.sweep(...)` is the function even where the name is bound to this module."""

    def __call__(self, *args: Any, **kwargs: Any) -> list[Any]:
        return sweep(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
