"""The network-bending toolbox section of `torchbend demo`: transforms, feature clusters, a sweep, a GIF.

    >>> html, outputs = toolbox_section(make_context(0), Path("torchbend-demo"))   # writes its pictures

Every picture bends one decoder layer of the shipped VAE and decodes the demo's latents.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import torch

import torchbend as tb

from ..plot import contact_sheet, strip

LAYER = "decoder_net_convt1"
FINER = "decoder_net_convt2"  # 14 x 14 maps, where LAYER's 7 x 7 ones are too small for a 3 x 3 erosion


def transforms() -> dict[str, tuple[tb.BendingCallback, str]]:
    """Title -> (the transform, the activation it bends): `LAYER`, or `FINER` where `LAYER` would go black."""
    on_layer = {
        "Rotate(45)": tb.Rotate(45),
        "Translate(0.25, wrap)": tb.Translate(0.25, padding="wrap"),
        "Zoom(2)": tb.Zoom(2),
        "Flip(-1)": tb.Flip(-1),
        "Dilate(3)": tb.Dilate(3),
        "Invert()": tb.Invert(),
        "BinaryThreshold(0.5)": tb.BinaryThreshold(0.5),
        "Clamp(-0.5, 0.5)": tb.Clamp(-0.5, 0.5),
        "Quantize(3)": tb.Quantize(3),
        "Sobel()": tb.Sobel(),
        "Blur(0.5)": tb.Blur(0.5),
    }
    chosen = {title: (cb, LAYER) for title, cb in on_layer.items()}
    chosen["Erode(3) on convt2"] = (tb.Erode(3), FINER)
    return chosen


def _decode_with(bended: tb.BendedModule, cb: tb.BendingCallback, z: torch.Tensor, layer: str = LAYER) -> torch.Tensor:
    with bended.bend(cb, layer, fn="decode"):
        return bended.decode(z=z)


def toolbox_section(ctx: Any, out: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """Write the toolbox pictures into `out`; return their HTML section and each transform's output by title."""
    from .demo import BLACK, READABLE, contrast

    bended, z = ctx.bended, ctx.z[:4]
    bended.reset()
    names, chosen = zip(*transforms().items())
    outs = [_decode_with(bended, cb, z, layer) for cb, layer in chosen]
    rows = [list(range(i, min(i + 4, len(outs)))) for i in range(0, len(outs), 4)]
    contact_sheet(
        [[outs[i] for i in row] for row in rows],
        titles=[[names[i] for i in row] for row in rows],
        n_rows=2,
        cell=2.0,
        path=out / "toolbox_transforms.png",
    ).clear()

    groups = tb.cluster_features(bended, LAYER, fn="decode", inputs={"z": ctx.z}, k=4, seed=0)
    groups.plot(path=out / "toolbox_clusters.png").clear()
    ablated = [bended.decode(z=z)] + [_decode_with(bended, tb.Select(tb.Ablate(), g), z) for g in groups.values()]
    strip(
        ablated, titles=["plain", *(f"{n} ablated" for n in groups)], n_rows=2, path=out / "toolbox_ablate_clusters.png"
    ).clear()

    angle = tb.BendingParameter("angle", 0.0)
    with bended.bend(tb.Rotate(angle), LAYER, fn="decode"):
        values = [0, 45, 90, 135, 180, 225, 270, 315]
        strip(
            tb.sweep(bended, "decode", {"z": z}, angle, values),
            titles=[f"{v} deg" for v in values],
            n_rows=2,
            path=out / "toolbox_sweep.png",
        ).clear()
    zoom = tb.BendingParameter("zoom", 1.0)
    with bended.bend(tb.Zoom(zoom, padding="reflection"), LAYER, fn="decode"):
        tb.animate(
            bended,
            "decode",
            {"z": ctx.z[:8]},
            zoom,
            tb.curves.sine(1.5, 0.8, 24),
            n_rows=2,
            scale=3,
            path=out / "toolbox_zoom.gif",
            progress=False,
        )

    dark = [
        f"{name} is dark (99% of its pixels below {float(torch.quantile(o.flatten(), 0.99)):.2f}): {BLACK}."
        for name, o in zip(names, outs)
        if contrast(o) < READABLE
    ]
    pictures = [
        (
            "toolbox_transforms.png",
            f"Each transform on every feature map of {LAYER} (Erode on {FINER}: a 3 x 3 "
            f"erosion of {LAYER}'s 7 x 7 maps leaves an almost black picture), one per picture."
            + "".join(f" {note}" for note in dark),
        ),
        (
            "toolbox_clusters.png",
            f"The channels of {LAYER} in 4 groups by where they respond (k-means): each group's mean activation map.",
        ),
        ("toolbox_ablate_clusters.png", "Ablating one group at a time with tb.Select(tb.Ablate(), groups[name])."),
        ("toolbox_sweep.png", "A sweep of a live Rotate angle: tb.sweep(bended, 'decode', {'z': z}, angle, values)."),
        ("toolbox_zoom.gif", "tb.animate: a live Zoom factor moving along a sine."),
    ]
    body = "".join(f'<p>{html.escape(text)}</p><img src="{name}" alt="{html.escape(text)}">' for name, text in pictures)
    return f"<section><h2>The network-bending toolbox</h2>{body}</section>", dict(zip(names, outs))
