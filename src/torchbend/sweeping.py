"""Sweeps and animations of a live parameter: one output per value, as a list, a strip or a GIF/MP4.

    >>> angle = tb.BendingParameter("angle", 0.0)
    >>> bended.bend(tb.Rotate(angle), "decoder_net_convt1", fn="decode")
    >>> outs = tb.sweep(bended, "decode", {"z": z}, angle, [0, 45, 90, 135])
    >>> tb.plot.strip(outs, titles=["0", "45", "90", "135"], path="strip.png")
    >>> tb.animate(bended, "decode", {"z": z}, "angle", tb.curves.sine(0, 90, 48), path="angle.gif")

Values are any sequence: `tb.curves` makes common ones. The parameter itself is never set:
each value holds for its own outputs only, so a live performance on the same bended module
goes on undisturbed. `torchbend render` and grids (`torchbend.apps.grids`) render through the same
`outputs_for_values`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .bending.parameter import BendingParameter
from .core import calls
from .errors import BendingError
from .runtime.per_example import batch_size, repeat_batch, split


def _parameter(bended: Any, parameter: str | BendingParameter) -> BendingParameter:
    if isinstance(parameter, BendingParameter):
        return parameter
    known = bended.controllables
    if parameter not in known:
        raise KeyError(f"no bending parameter named {parameter!r} is in use; in use: {', '.join(known) or 'none'}")
    return known[parameter]


def sweep(
    bended: Any,
    fn: str,
    inputs: dict[str, Any],
    parameter: str | BendingParameter,
    values: Iterable[float],
    progress: bool = False,
    batch: int = 16,
) -> list[Any]:
    """Call method `fn` of `bended` on `inputs` once per value of `parameter`; the outputs, in value order.

        >>> outs = tb.sweep(bended, "decode", {"z": z}, "angle", tb.curves.linear(0, 90, 4))

    The parameter itself is never set, so other threads calling `bended` meanwhile are not
    affected: see `outputs_for_values`.
    """
    param = _parameter(bended, parameter)
    values = list(values)
    for i, value in enumerate(values):
        try:
            param._check(value)
        except (TypeError, ValueError) as error:
            raise BendingError(f"values[{i}]: {error}") from None
    return outputs_for_values(bended, fn, inputs, param.name, values, batch=batch, progress=progress)


def outputs_for_values(
    bended: Any,
    fn: str,
    inputs: dict[str, Any],
    name: str,
    values: Sequence[Any],
    batch: int = 16,
    progress: bool = False,
) -> list[Any]:
    """The outputs of `fn` on `inputs` with the live parameter `name` at each of `values`, without setting it.

        >>> outs = outputs_for_values(bended, "decode", {"z": z}, "angle", [0, 45, 90])

    Up to `batch` values run as one call with per-example values (`torchbend.runtime.per_example`); inputs
    without one shared batch dimension run a value at a time, the value given to that call only.
    What `tb.sweep`, `tb.animate`, ``torchbend render`` and grids all render with.
    """
    size = batch_size(inputs)
    step = max(1, int(batch)) if size is not None else 1
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(values), desc=name, unit="frame")
    method = getattr(bended, fn)
    outputs: list[Any] = []
    with torch.no_grad():
        for start in range(0, len(values), step):
            chunk = list(values[start : start + step])
            if size is None:
                outputs.append(calls.call_with(bended.engine, fn, (), inputs, {name: chunk[0]}))
            else:
                repeated = {k: repeat_batch(v, size, len(chunk)) for k, v in inputs.items()}
                out = method(**repeated, per_example={name: [v for v in chunk for _ in range(size)]})
                outputs += [
                    split(out, torch.arange(j * size, (j + 1) * size), size * len(chunk)) for j in range(len(chunk))
                ]
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return outputs


def _frame(output: Any, n_rows: int | None) -> np.ndarray:
    from .plot import image_grid

    tensor = getattr(output, "output", output)
    if isinstance(tensor, (tuple, list)):
        tensor = tensor[0]
    grid = image_grid(tensor, n_rows=n_rows)
    return (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)


def animate(
    bended: Any,
    fn: str,
    inputs: dict[str, Any],
    parameter: str | BendingParameter,
    values: Iterable[float],
    path: str | Path = "out.gif",
    fps: int = 12,
    n_rows: int | None = None,
    scale: int = 4,
    progress: bool = True,
) -> Path:
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
