"""Sweep one bending parameter and draw the outputs: a strip of image grids (PNG) or an animation (GIF).

    >>> render_sweep(bended, "decode", {"z": z}, "keep", [0.0, 0.5, 1.0], "sweep.png")   # one row per value
    >>> render_sweep(bended, "decode", {"z": z}, "keep", [0.0, 0.5, 1.0], "sweep.gif")   # one frame per value

The parameter itself is never set: each value holds for its own output only (`tb.sweep`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BendingError
from ..extras import require
from ..plot import image_grid, plot_image_activations
from ..sweeping import sweep
from .outputs import first_tensor


def sweep_outputs(
    bended: Any, method: str, inputs: dict[str, torch.Tensor], param: str, values: Sequence[float]
) -> list[torch.Tensor]:
    """The first output tensor of `method` for each value of `param` (`tb.sweep`: the parameter is never set)."""
    return [first_tensor(out) for out in sweep(bended, method, inputs, param, values)]


def render_sweep(
    bended: Any,
    method: str,
    inputs: dict[str, torch.Tensor],
    param: str,
    values: Sequence[float],
    path: str | Path,
    n_rows: int = 1,
) -> Path:
    """Write the sweep of `param` over `values` to `path` (.png strip or .gif animation)."""
    path = Path(path)
    if path.suffix not in (".png", ".gif"):
        raise BendingError(f"cannot render {path.name}: the sweep file must end in .png or .gif")
    outs = sweep_outputs(bended, method, inputs, param, values)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        require("matplotlib", "plot", "to draw a sweep")
        fig = plot_image_activations(outs, n_rows=n_rows, titles=[f"{param} = {v:g}" for v in values], path=path)
        fig.clear()
        return path
    image = require("PIL.Image", "plot", "to write a GIF")
    frames = [image.fromarray((np.clip(image_grid(o, n_rows), 0, 1) * 255).round().astype(np.uint8)) for o in outs]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=200, loop=0)
    return path
