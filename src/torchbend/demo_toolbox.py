"""The network-bending toolbox section of `torchbend demo`: transforms, feature clusters, a sweep, a GIF.

    >>> html = toolbox_section(make_context(0), Path("torchbend-demo"))   # writes its pictures, returns HTML

Every picture bends one decoder layer of the shipped VAE and decodes the demo's latents.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import torch

import torchbend as tb

from .plot import contact_sheet, strip

LAYER = "decoder_net_convt1"


def transforms() -> dict[str, tb.BendingCallback]:
    return {
        "Rotate(45)": tb.Rotate(45), "Translate(0.25, wrap)": tb.Translate(0.25, padding="wrap"),
        "Zoom(2)": tb.Zoom(2), "Flip(-1)": tb.Flip(-1), "Erode(3)": tb.Erode(3), "Dilate(3)": tb.Dilate(3),
        "Invert()": tb.Invert(), "BinaryThreshold(0.5)": tb.BinaryThreshold(0.5),
        "Clamp(-0.5, 0.5)": tb.Clamp(-0.5, 0.5),
        "Quantize(3)": tb.Quantize(3), "Sobel()": tb.Sobel(), "Blur(1)": tb.Blur(1.0),
    }


def _decode_with(bended: tb.BendedModule, cb: tb.BendingCallback, z: torch.Tensor) -> torch.Tensor:
    with bended.bend(cb, LAYER, fn="decode"):
        return bended.decode(z=z)


def toolbox_section(ctx: Any, out: Path) -> str:
    """Write the toolbox pictures into `out`; return their HTML section."""
    bended, z = ctx.bended, ctx.z[:4]
    bended.reset()
    names, cbs = zip(*transforms().items())
    outs = [_decode_with(bended, cb, z) for cb in cbs]
    rows = [list(range(i, min(i + 4, len(outs)))) for i in range(0, len(outs), 4)]
    contact_sheet([[outs[i] for i in row] for row in rows], titles=[[names[i] for i in row] for row in rows],
                  n_rows=2, cell=2.0, path=out / "toolbox_transforms.png").clear()

    groups = tb.cluster_features(bended, LAYER, fn="decode", inputs={"z": ctx.z}, k=4, seed=0)
    groups.plot(path=out / "toolbox_clusters.png").clear()
    ablated = [bended.decode(z=z)] + [_decode_with(bended, tb.Select(tb.Ablate(), g), z) for g in groups.values()]
    strip(ablated, titles=["plain", *(f"{n} ablated" for n in groups)], n_rows=2,
          path=out / "toolbox_ablate_clusters.png").clear()

    angle = tb.BendingParameter("angle", 0.0)
    with bended.bend(tb.Rotate(angle), LAYER, fn="decode"):
        values = [0, 45, 90, 135, 180, 225, 270, 315]
        strip(tb.sweep(bended, "decode", {"z": z}, angle, values), titles=[f"{v} deg" for v in values], n_rows=2,
              path=out / "toolbox_sweep.png").clear()
    zoom = tb.BendingParameter("zoom", 1.0)
    with bended.bend(tb.Zoom(zoom, padding="reflection"), LAYER, fn="decode"):
        tb.animate(bended, "decode", {"z": ctx.z[:8]}, zoom, tb.curves.sine(1.5, 0.8, 24), n_rows=2, scale=3,
                   path=out / "toolbox_zoom.gif", progress=False)

    pictures = [
        ("toolbox_transforms.png", f"Each transform on every feature map of {LAYER}, one per picture."),
        ("toolbox_clusters.png", f"The channels of {LAYER} in 4 groups by where they respond (k-means): "
                                 "each group's mean activation map."),
        ("toolbox_ablate_clusters.png", "Ablating one group at a time with tb.Select(tb.Ablate(), groups[name])."),
        ("toolbox_sweep.png", "A sweep of a live Rotate angle: tb.sweep(bended, 'decode', {'z': z}, angle, values)."),
        ("toolbox_zoom.gif", "tb.animate: a live Zoom factor moving along a sine."),
    ]
    body = "".join(f'<p>{html.escape(text)}</p><img src="{name}" alt="{html.escape(text)}">' for name, text in pictures)
    return f"<section><h2>The network-bending toolbox</h2>{body}</section>"
