"""The tutorial, step by step, on the shipped MNIST VAE: `torchbend demo`.

    >>> results = run_demo("torchbend-demo", seed=0)      # writes one PNG per step and index.html

Each step bends every decoder layer in turn and decodes the same latents; its picture has
one row per layer. The code shown under each picture in the report is the step's own source.
"""

from __future__ import annotations

import html
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import torchbend as tb

from ..datasets import mnist
from ..extras import require
from ..plot import plot_image_activations
from ..zoo import load_mnist_vae
from ..zoo.mnist_vae import MNISTVAE
from .demo_toolbox import toolbox_section


@dataclass
class Context:
    """What every step works with: the bended VAE, latents, and the names it bends."""

    vae: MNISTVAE
    bended: tb.BendedModule
    z: torch.Tensor
    weights: list[str]
    activations: list[str]
    digits: torch.Tensor
    seed: int = 0
    learned: tuple[str, ...] = ("decoder_net_convt1",)  # the layer the learned step bends


def each_layer(ctx: Context, cb: tb.BendingCallback, names: list[str]) -> list[torch.Tensor]:
    """Decode `ctx.z` once per name, with `cb` bending only that weight or activation."""
    outs = []
    for name in names:
        ctx.bended.reset()
        ctx.bended.bend(cb, name)
        outs.append(ctx.bended.decode(z=ctx.z))
    ctx.bended.reset()
    return outs


# --- the steps; their source is what the report shows ----------------------------------------------
def unbent(ctx: Context) -> list[torch.Tensor]:
    return [ctx.bended.decode(z=ctx.z)]


def weight_mask(ctx: Context) -> list[torch.Tensor]:
    keep = tb.BendingParameter("mask", 0.3)  # keep 30% of each weight
    return each_layer(ctx, tb.Mask(prob=keep, seed=ctx.seed), ctx.weights)


def weight_scale(ctx: Context) -> list[torch.Tensor]:
    return each_layer(ctx, tb.Scale(scale=tb.BendingParameter("scale", 10.0)), ctx.weights)


def weight_invert(ctx: Context) -> list[torch.Tensor]:
    return each_layer(ctx, tb.Scale(scale=tb.BendingParameter("scale", -1.0)), ctx.weights)


def weight_bias_up(ctx: Context) -> list[torch.Tensor]:
    return each_layer(ctx, tb.Bias(bias=tb.BendingParameter("bias", 0.01)), ctx.weights)


def weight_bias_down(ctx: Context) -> list[torch.Tensor]:
    return each_layer(ctx, tb.Bias(bias=tb.BendingParameter("bias", -0.01)), ctx.weights)


def weight_cosine(ctx: Context) -> list[torch.Tensor]:
    def bending_op(x, f=8):
        return torch.cos(2 * f * torch.pi * x)

    return each_layer(ctx, tb.Lambda(bending_op), ctx.weights)


def activation_threshold(ctx: Context) -> list[torch.Tensor]:
    threshold = tb.BendingParameter("threshold", 0.5)  # keep the most active half of the channels
    return each_layer(ctx, tb.ThresholdActivation(threshold=threshold, dim=-3, invert=False), ctx.activations)


def norm_by_instance(ctx: Context) -> list[torch.Tensor]:
    def normalize(activation):  # (batch, channel, height, width): divide by the max over the batch
        return activation / activation.amax(0, keepdim=True)

    return each_layer(ctx, tb.Lambda(normalize), ctx.activations)


def norm_by_channel(ctx: Context) -> list[torch.Tensor]:
    def normalize(activation):  # divide by the max over the channels
        return activation / activation.amax(1, keepdim=True)

    return each_layer(ctx, tb.Lambda(normalize), ctx.activations)


def interpolation(ctx: Context) -> list[torch.Tensor]:
    z = ctx.bended.encode(ctx.digits)[0]  # the latents of two test digits
    weights = torch.stack([torch.linspace(0.0, 1.0, 8), torch.linspace(1.0, 0.0, 8)], 1)
    outs = []
    for name in ctx.activations:
        ctx.bended.reset()
        ctx.bended.bend(tb.InterpolateActivation(), name)
        acts = ctx.bended.get_activations(name, z=z, fn="decode")
        outs.append(ctx.bended.from_activations(name, **acts, interp_weights=weights, fn="decode"))
    ctx.bended.reset()
    return outs


def learned_gain(ctx: Context) -> list[torch.Tensor]:
    plain = ctx.vae.decode(ctx.z)
    ink = lambda img: torch.sigmoid((img - 0.5) * 10).mean()  # noqa: E731  # the share of bright pixels
    target, background = 1.8 * ink(plain), (plain < 0.1).float()
    outs = []
    for name in ctx.learned:
        ctx.bended.reset()
        shape = ctx.bended.activation_shape(name, fn="decode")
        assert shape is not None  # a tensor activation
        channels = shape[1]
        ctx.bended.bend(tb.Scale(tb.Trainable(1.0, shape=(channels, 1, 1))), name, fn="decode")
        tb.optimize(
            ctx.bended,
            "decode",
            {"z": ctx.z},
            steps=40,
            lr=0.05,
            progress=False,
            loss=lambda img: (ink(img) - target) ** 2 + 0.05 * (img * background).mean(),
        )
        outs.append(ctx.bended.decode(z=ctx.z))
    ctx.bended.reset()
    return outs


@dataclass
class Step:
    name: str
    title: str
    explanation: str
    run: Callable[[Context], list[torch.Tensor]]
    rows: str | None = None  # "weights" or "activations": what each row of the picture bends

    @property
    def setting(self) -> str:
        """The bend and its parameter values, as the row titles show them."""
        return self.title.split(": ", 1)[-1]


STEPS = [
    Step(
        "00_unbent",
        "The unbent model",
        "Sixteen digits decoded from random latents: the reference for every step.",
        unbent,
    ),
    Step(
        "01_weight_mask",
        "Weights: Mask(0.3)",
        "Keeps a random 30% of one decoder layer's weights (one row per layer, nearest the latent first).",
        weight_mask,
        "weights",
    ),
    Step(
        "02_weight_scale",
        "Weights: Scale(10)",
        "Multiplies one layer's weights by 10; the saturating output makes the network look almost linear.",
        weight_scale,
        "weights",
    ),
    Step(
        "03_weight_invert",
        "Weights: Scale(-1)",
        "Inverts one layer's weights: ReLU is asymmetric, so the output changes far more.",
        weight_invert,
        "weights",
    ),
    Step(
        "04_weight_bias_up",
        "Weights: Bias(0.01)",
        "Adds 0.01 to every weight of one layer. Small as it is, each output of a layer sums hundreds of weights, "
        "so the effect is large and differs from layer to layer; with 0.1, decoder.net.convt2's row is black.",
        weight_bias_up,
        "weights",
    ),
    Step(
        "05_weight_bias_down",
        "Weights: Bias(-0.01)",
        "Subtracts 0.01 from every weight of one layer.",
        weight_bias_down,
        "weights",
    ),
    Step(
        "06_weight_cosine",
        "Weights: Lambda(cos)",
        "Replaces each weight w by cos(16 pi w): any function can bend a weight.",
        weight_cosine,
        "weights",
    ),
    Step(
        "07_activation_threshold",
        "Activations: ThresholdActivation(0.5)",
        "Keeps, for each image, the most active half of one layer's channels: each input is bent differently.",
        activation_threshold,
        "activations",
    ),
    Step(
        "08_norm_by_instance",
        "Activations: normalised across instances",
        "Divides one layer's activations by their maximum over the batch.",
        norm_by_instance,
        "activations",
    ),
    Step(
        "09_norm_by_channel",
        "Activations: normalised across channels",
        "Divides one layer's activations by their maximum over the channels.",
        norm_by_channel,
        "activations",
    ),
    Step(
        "10_interpolation",
        "Layer-wise interpolation",
        "Mixes two test digits at one layer and decodes the rest: the closer to the latent, the smoother the path.",
        interpolation,
        "activations",
    ),
    Step(
        "11_learned_gain",
        "Learned: Scale(tb.Trainable) per channel, for bolder digits",
        "A gain per channel of one layer, found by tb.optimize (40 steps) so the digits hold 1.8 times the ink "
        "on a dark background, instead of set by hand (examples/learn_bold_digits.py compares it with a "
        "hand-made bend).",
        learned_gain,
        "learned",
    ),
]


def make_context(seed: int) -> Context:
    """The shipped VAE, bended and traced on `decode`, with latents drawn from `seed`."""
    torch.manual_seed(seed)
    vae = load_mnist_vae()
    bended = tb.BendedModule(vae)
    z = torch.randn(16, 64)
    bended.trace("decode", z=z)
    test = mnist("test")
    first = next(i for i in range(len(test)) if test[i][1] == seed % 10)  # two different digits
    second = next(i for i in range(len(test)) if test[i][1] == (seed + 3) % 10)
    return Context(
        vae=vae,
        bended=bended,
        z=z,
        weights=bended.resolve_parameters(r"decoder.net.convt.*weight.*"),
        activations=bended.resolve_activations(r"decoder_net_convt.*", fn="decode"),
        digits=torch.stack([test[first][0], test[second][0]]),
        seed=seed,
    )


def reference(ctx: Context, step: Step) -> torch.Tensor:
    """The unbent row drawn above a step's rows: the plain decoding of the same latents."""
    if step.run is interpolation:  # the plain path: mixing the two latents themselves
        z = ctx.vae.encode(ctx.digits)[0]
        mixtures = torch.stack([torch.linspace(0.0, 1.0, 8), torch.linspace(1.0, 0.0, 8)], 1)
        return ctx.vae.decode(mixtures @ z)
    return ctx.vae.decode(ctx.z)


READABLE = 0.25  # grey levels (of 1) between a panel's darkest and brightest 1% for it to read as a picture


def contrast(images: torch.Tensor) -> float:
    """The grey levels between the darkest and the brightest 1% of the pixels of `images` (0: uniform)."""
    x = images.detach().float().flatten()
    x = x[:: max(1, x.numel() // 100_000)]  # torch.quantile takes at most 16M numbers
    return float(torch.quantile(x, 0.99) - torch.quantile(x, 0.01))


BLACK = "the bend pushes the last layer's input far below zero, where the final sigmoid gives 0, which is black"


def uniform_notes(ctx: Context, step: Step, outs: list[torch.Tensor]) -> list[str]:
    """A sentence for each row that does not read as a picture (uniform, or nearly black), saying why."""
    notes = []
    names = getattr(ctx, step.rows) if step.rows else []
    for name, out in zip(names, outs):
        if float(out.max() - out.min()) <= 1e-4:
            note = f"Uniform output: {name}: every pixel is {float(out.flatten()[0]):.3g}."
        elif contrast(out) < READABLE:
            note = (
                f"Dark output: {name}: 99% of the pixels are below {float(torch.quantile(out.flatten(), 0.99)):.2f}"
                f" (0 is black): {BLACK}."
            )
        else:
            continue
        if step.run is activation_threshold:
            shape = ctx.bended.activation_shape(name, fn="decode")
            assert shape is not None  # a tensor activation
            channels = shape[1]
            kept = int(0.5 * channels)
            note += (
                f" ThresholdActivation(0.5) keeps floor(0.5 x {channels}) = {kept} of the {channels} channel(s) "
                "of this layer for each image" + (", so nothing of the latent passes through it." if kept == 0 else ".")
            )
        elif step.run is norm_by_channel and float(out.max() - out.min()) <= 1e-4:
            note += " A layer of one channel divided by its maximum over the channels is 1 everywhere: sigmoid(1)."
        notes.append(note)
    return notes


def row_titles(ctx: Context, step: Step) -> list[str]:
    """ "unbent", then one title per bent row: the layer and the bend with its parameter values."""
    names = getattr(ctx, step.rows) if step.rows else []
    return ["unbent"] + [f"{name}: {step.setting}" for name in names]


def _report(ctx: Context, notes: dict[str, list[str]] | None = None, audio_section: str = "") -> str:
    sections = []
    notes = notes or {}
    for step in STEPS:
        code = inspect.getsource(step.run)
        remarks = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in notes.get(step.name, []))
        sections.append(
            f"<section><h2>{html.escape(step.title)}</h2><p>{html.escape(step.explanation)}</p>"
            f'<img src="{step.name}.png" alt="{html.escape(step.title)}">{remarks}'
            f"<pre><code>{html.escape(code)}</code></pre></section>"
        )
    rows = ", ".join(ctx.weights)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>torchbend demo</title>"
        "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;padding:0 1em}"
        "img{width:100%;image-rendering:pixelated}pre{background:#f4f4f4;padding:.8em;overflow-x:auto}"
        "</style></head><body><h1>Bending an MNIST VAE with torchbend</h1>"
        f"<p>Seed: {ctx.seed} (latents, masks and noise; <code>torchbend demo --seed {ctx.seed}</code> "
        "draws them again). Rows of each picture, top to bottom: the unbent model, then the layers "
        f"{html.escape(rows)} (weights) or their activations, each titled with its bend. "
        "Every step starts from the same latents.</p>"
        f"<pre><code>{html.escape(inspect.getsource(each_layer))}</code></pre>"
        + "".join(sections)
        + audio_section
        + "</body></html>"
    )


def run_demo(out: str | Path = "torchbend-demo", seed: int = 0, progress: bool = True) -> dict[str, list[torch.Tensor]]:
    """Run every step, write ``<out>/<step>.png`` and ``<out>/index.html``; return each step's outputs.

    The outputs are keyed by step name (`STEPS`), then ``"toolbox_transforms"`` (one output per transform of
    `torchbend.apps.demo_toolbox.transforms`) and the audio steps (`torchbend.apps.demo_audio.STEPS`).
    """
    for module in ("matplotlib", "tqdm") if progress else ("matplotlib",):
        require(module, "demo", "by the demo")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ctx = make_context(seed)
    steps = STEPS
    if progress:
        from tqdm import tqdm

        steps = tqdm(STEPS, desc="bending", unit="step")
    results, notes = {}, {}
    with torch.no_grad():
        for step in steps:
            outs = step.run(ctx)
            results[step.name] = outs
            notes[step.name] = uniform_notes(ctx, step, outs)
            rows = outs if step.run is unbent else [reference(ctx, step), *outs]
            fig = plot_image_activations(rows, n_rows=1, titles=row_titles(ctx, step), path=out / f"{step.name}.png")
            fig.clear()
    toolbox, transformed = toolbox_section(ctx, out)
    results["toolbox_transforms"] = list(transformed.values())
    from .demo_audio import run_audio_demo

    audio_section, sounds = run_audio_demo(out, seed=seed)
    results.update(sounds)
    (out / "index.html").write_text(
        _report(ctx, notes, audio_section).replace("</body>", toolbox + "</body>"), encoding="utf-8"
    )
    return results
