"""Pictures of images and activations (matplotlib; works headless).

    >>> plain = vae.decode(z)
    >>> fig = plot_image_activations([plain, 1 - plain], n_rows=1, titles=["plain", "inverted"], path="out.png")
    >>> acts = bended.get_activations("decoder_net_convt1", z=z, fn="decode")
    >>> fig = plot_activation(acts["decoder_net_convt1"][0])      # a grid of feature maps

Figures are built without pyplot, so nothing global changes and no display is needed;
``display=True`` shows the figure inline in a notebook (and returns None).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .extras import require


def _figure(width: float, height: float) -> Any:
    Figure = require("matplotlib.figure", "plot", "to draw figures").Figure
    return Figure(figsize=(width, height), layout="constrained")


def _finish(fig: Any, display: bool, path: str | Path | None) -> Any:
    """Save and/or show `fig`; return it, or None once shown (a notebook would show it twice)."""
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    if display:
        try:
            from IPython.display import Image
            from IPython.display import display as show
        except ImportError:
            raise ImportError("display=True needs IPython (it shows the figure in a notebook)") from None
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=100)
        show(Image(data=png.getvalue(), format="png"))
        return None
    return fig


def image_grid(images: torch.Tensor, n_rows: int | None = None, pad: int = 1, fill: float = 1.0) -> np.ndarray:
    """A batch (B, C, H, W) tiled into one (rows*H, cols*W[, 3]) array in [0, 1].

    Values already in [0, 1] are kept; otherwise the batch is scaled to [0, 1] as a whole.
    One channel gives a grey image, three an RGB one; other counts show channel 0. Padding
    and the empty cells of the last row hold `fill` (NaN draws them as the background).
    """
    x = torch.as_tensor(images).detach().float().cpu()
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ValueError(f"images must be a batch (B, C, H, W), got shape {tuple(x.shape)}")
    if x.shape[1] not in (1, 3):
        x = x[:, :1]
    low, high = float(x.min()), float(x.max())
    if low < 0 or high > 1:
        x = (x - low) / max(high - low, 1e-12)
    b, c, h, w = x.shape
    rows = n_rows or max(1, math.floor(math.sqrt(b)))
    cols = math.ceil(b / rows)
    grid = torch.full((c, rows * (h + pad) - pad, cols * (w + pad) - pad), fill)
    for i in range(b):
        r, col = divmod(i, cols)
        grid[:, r * (h + pad) : r * (h + pad) + h, col * (w + pad) : col * (w + pad) + w] = x[i]
    out = grid.permute(1, 2, 0).numpy()
    return out[..., 0] if c == 1 else out


def plot_image_activations(
    images: torch.Tensor | Sequence[torch.Tensor],
    n_rows: int | None = None,
    display: bool = False,
    path: str | Path | None = None,
    titles: Sequence[str] | None = None,
) -> Any:
    """One panel per batch of images (B, C, H, W), stacked vertically; returns the matplotlib Figure.

    `n_rows` is the number of rows of each panel's grid (default: about square). With
    ``display=True`` the figure is shown inline in a notebook and None is returned; with
    `path` it is also saved as a PNG.
    """
    batches = [images] if isinstance(images, torch.Tensor) else list(images)
    if not batches:
        raise ValueError("plot_image_activations needs at least one batch of images")
    if titles is not None and len(titles) != len(batches):
        raise ValueError(f"got {len(titles)} titles for {len(batches)} panels")
    grids = [image_grid(b, n_rows) for b in batches]
    width = 10.0
    heights = [width * g.shape[0] / g.shape[1] for g in grids]
    fig = _figure(width, sum(heights) + 0.3 * len(grids) * (titles is not None) + 0.1)
    axes = fig.subplots(len(grids), 1, squeeze=False, height_ratios=[g.shape[0] / g.shape[1] for g in grids])
    for i, (ax, grid) in enumerate(zip(axes[:, 0], grids)):
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_axis_off()
        if titles is not None:
            ax.set_title(titles[i], fontsize=10, loc="left")
    return _finish(fig, display, path)


LAYOUTS = ("BCHW", "CHW", "BCT", "BTC", "CT", "TC", "T")


def _to_channels_first(x: torch.Tensor, layout: str | None) -> torch.Tensor:
    """Item 0 of a batch, as (C, H, W) maps or (C, T) / (T,) curves."""
    if layout is None:  # guessed: a 4-D batch, or a leading batch axis of size 1
        if x.ndim == 4 or (x.ndim == 3 and x.shape[0] == 1):
            x = x[0]
        return x
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if x.ndim != len(layout):
        raise ValueError(f"layout {layout} needs a {len(layout)}-d tensor, got shape {tuple(x.shape)}")
    if layout.startswith("B"):
        x, layout = x[0], layout[1:]
    return x.T if layout == "TC" else x


def plot_activation(
    tensor: torch.Tensor,
    display: bool = False,
    path: str | Path | None = None,
    title: str | None = None,
    layout: str | None = None,
) -> Any:
    """2-D feature maps (C, H, W) as a grid of channels; 1-D activations (C, T) or (T,) as curves.

        >>> fig = plot_activation(acts["decoder_net_convt1"])           # (B, C, H, W): item 0's maps
        >>> fig = plot_activation(hidden, layout="BTC")                 # (B, T, C): item 0, one curve per channel
        >>> fig.savefig("activation.png")

    Without `layout`, a 4-D tensor is a batch of maps (item 0 is shown), a 3-D one with a
    leading axis of size 1 is one item, any other 3-D one is (C, H, W), a 2-D one (C, T).
    `layout` (one of `LAYOUTS`) says it instead: ``"BCT"`` and ``"BTC"`` draw item 0's curves.
    Empty cells of the map grid are drawn as the background. Returns the Figure.
    """
    x = _to_channels_first(torch.as_tensor(tensor).detach().float().cpu(), layout)
    if x.ndim == 3:  # feature maps
        channels = x.shape[0]
        rows = max(1, math.floor(math.sqrt(channels)))
        grid = image_grid(x.unsqueeze(1), n_rows=rows, fill=float("nan"))
        fig = _figure(6.0, 6.0 * grid.shape[0] / grid.shape[1] + 0.4)
        ax = fig.subplots()
        cmap = require("matplotlib", "plot").colormaps["magma"].with_extremes(bad="white")
        image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, interpolation="nearest")
        fig.colorbar(image, ax=ax, shrink=0.8, label="scaled to [0, 1]" if x.min() < 0 or x.max() > 1 else None)
        ax.set_axis_off()
    elif x.ndim in (1, 2):  # curves
        curves = x.unsqueeze(0) if x.ndim == 1 else x
        fig = _figure(8.0, 3.0)
        ax = fig.subplots()
        for i, curve in enumerate(curves):
            ax.plot(curve.numpy(), linewidth=0.8, label=f"channel {i}" if len(curves) <= 8 else None)
        if len(curves) <= 8 and len(curves) > 1:
            ax.legend(fontsize=7)
        ax.set_xlabel("position")
    else:
        raise ValueError(f"plot_activation shows (C, H, W) maps or (C, T) / (T,) curves, got shape {tuple(x.shape)}")
    if title:
        fig.suptitle(title)
    return _finish(fig, display, path)


def _as_images(output: Any) -> torch.Tensor:
    tensor = getattr(output, "output", output)
    if isinstance(tensor, (tuple, list)):
        tensor = tensor[0]
    return torch.as_tensor(tensor)


def contact_sheet(
    rows: Sequence[Sequence[Any]],
    row_titles: Sequence[str] | None = None,
    column_titles: Sequence[str] | None = None,
    n_rows: int | None = None,
    cell: float = 1.6,
    titles: Sequence[Sequence[str]] | None = None,
    display: bool = False,
    path: str | Path | None = None,
) -> Any:
    """A table of image grids: one row per bend or layer, one column per value (e.g. `tb.sweep` outputs).

    `titles`, one list per row, titles each cell; `column_titles` only the top row.

        >>> tb.plot.contact_sheet([tb.sweep(bended, "decode", {"z": z}, p, values) for p in params],
        ...                       row_titles=names, column_titles=[str(v) for v in values], path="sheet.png")
    """
    rows = [list(r) for r in rows]
    if not rows or not rows[0]:
        raise ValueError("contact_sheet needs at least one row of outputs")
    n_cols = max(len(r) for r in rows)
    if row_titles is not None and len(row_titles) != len(rows):
        raise ValueError(f"got {len(row_titles)} row titles for {len(rows)} rows")
    if column_titles is not None and len(column_titles) != n_cols:
        raise ValueError(f"got {len(column_titles)} column titles for {n_cols} columns")
    fig = _figure(
        cell * n_cols + 0.8 * (row_titles is not None),
        (cell + 0.3 * (titles is not None)) * len(rows) + 0.3 * (column_titles is not None),
    )
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n_cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(row):
                grid = image_grid(_as_images(row[j]), n_rows)
                ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            if column_titles is not None and i == 0:
                ax.set_title(str(column_titles[j]), fontsize=8)
            if titles is not None and j < len(titles[i]):
                ax.set_title(str(titles[i][j]), fontsize=8)
            if row_titles is not None and j == 0:
                ax.set_ylabel(str(row_titles[i]), fontsize=8)
    return _finish(fig, display, path)


def strip(
    outputs: Sequence[Any],
    titles: Sequence[str] | None = None,
    n_rows: int | None = None,
    label: str | None = None,
    display: bool = False,
    path: str | Path | None = None,
) -> Any:
    """One row of image grids, one per output (e.g. a `tb.sweep`), titled by `titles`.

    >>> tb.plot.strip(tb.sweep(bended, "decode", {"z": z}, "angle", [0, 90, 180]), titles=["0", "90", "180"])
    """
    return contact_sheet(
        [outputs],
        row_titles=None if label is None else [label],
        column_titles=titles,
        n_rows=n_rows,
        display=display,
        path=path,
    )
