"""The audio section of `torchbend demo`: the tutorial's bends on the shipped audio model.

    >>> section_html, results = run_audio_demo("torchbend-demo", seed=0)   # WAVs and PNGs under audio/

Each step decodes the same held-out synthetic clips with one bend; every output is written as a
WAV file (played by an ``<audio>`` element in the report) and pictured as a spectrogram. A sound
louder than full scale is scaled down to a peak of 0.99, never clipped, and the report says so.
"""

from __future__ import annotations

import html
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

import torchbend as tb

from ..audio.datasets import synthetic_audio
from ..audio.io import limit_peak, write
from ..audio.plot import plot_audio_activations
from ..zoo.audio_vae import load_audio_vae

WEIGHT = "decoder.harmonics.amplitude.2.weight"  # in the network that sets the harmonics' amplitudes
ACTIVATION = "decoder_harmonics_amplitude_1"  # its first hidden layer
LATENT = "z"  # the decoder's input: pitch (latent 0) and learned latents


@dataclass
class AudioContext:
    """The bended audio model (traced on ``decode``), the latents of two clips, and the clips."""

    bended: tb.BendedModule
    clips: torch.Tensor
    z: torch.Tensor


def reconstruction(ctx: AudioContext) -> list[torch.Tensor]:
    return [ctx.clips, ctx.bended.decode(ctx.z)]


def weight_mask(ctx: AudioContext) -> list[torch.Tensor]:
    ctx.bended.bend(tb.Mask(prob=tb.BendingParameter("keep", 0.2), seed=0), WEIGHT)  # keep 20% of the weights
    return [ctx.bended.decode(ctx.z)]


def weight_scale(ctx: AudioContext) -> list[torch.Tensor]:
    ctx.bended.bend(tb.Scale(scale=tb.BendingParameter("scale", 2.0)), WEIGHT)
    return [ctx.bended.decode(ctx.z)]


def activation_threshold(ctx: AudioContext) -> list[torch.Tensor]:
    threshold = tb.BendingParameter("threshold", 0.5)  # keep the most active half of the channels
    ctx.bended.bend(tb.ThresholdActivation(threshold=threshold, dim=-2), ACTIVATION)
    return [ctx.bended.decode(ctx.z)]


def interpolation(ctx: AudioContext) -> list[torch.Tensor]:
    ctx.bended.bend(tb.InterpolateActivation(), LATENT)
    acts = ctx.bended.get_activations(LATENT, z=ctx.z, fn="decode")  # both clips' latents
    weights = torch.tensor([[0.75, 0.25], [0.5, 0.5], [0.25, 0.75]])  # three mixes of the two clips
    mixes = ctx.bended.from_activations(LATENT, **acts, interp_weights=weights, fn="decode")
    return list(mixes.unsqueeze(1))


@dataclass
class AudioStep:
    name: str
    title: str
    explanation: str
    run: Callable[[AudioContext], list[torch.Tensor]]


STEPS = [
    AudioStep(
        "audio_00_reconstruction",
        "Audio: the unbent model",
        "Two held-out synthetic clips (top row: the originals, side by side) and their reconstructions.",
        reconstruction,
    ),
    AudioStep("audio_01_weight_mask", "Audio weights: Mask(0.2)", f"Keeps a random 20% of {WEIGHT}.", weight_mask),
    AudioStep(
        "audio_02_weight_scale",
        "Audio weights: Scale(2)",
        f"Multiplies {WEIGHT} by 2. A negative factor (-2) drives the model's tanh output to full scale: "
        "about 1,100 of the 32,768 samples.",
        weight_scale,
    ),
    AudioStep(
        "audio_03_activation_threshold",
        "Audio activations: ThresholdActivation(0.5)",
        f"Keeps, for each sound, the most active half of the channels of {ACTIVATION}.",
        activation_threshold,
    ),
    AudioStep(
        "audio_04_interpolation",
        "Audio: interpolating two sounds",
        "Mixes the two clips' latents (75/25, 50/50, 25/75), pitch included, and decodes the mixes.",
        interpolation,
    ),
]


def make_audio_context(seed: int = 0) -> AudioContext:
    """The shipped audio model (whole clips, no stream state), two held-out clips of one second."""
    vae = load_audio_vae(streaming=False)
    clips = synthetic_audio(2, seed=1000 + seed)
    with torch.no_grad():
        z = vae.encode(clips)
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    return AudioContext(bended=bended, clips=clips, z=z)


def level_note(index: int, sound: torch.Tensor, at_full_scale: int) -> str:
    """What the report says of the level of sound `index`: nothing (""), silence, or its peak scaled down."""
    peak = float(sound.abs().max())
    if peak <= 0.99:
        return "" if peak > 1e-4 else f"Sound {index + 1} is silent (peak {peak:.2g})."
    return (
        f"Sound {index + 1} peaks at {peak:.2f}, with {at_full_scale:,} of its {sound.numel():,} samples at full "
        f"scale (clipped, or saturated by the model's tanh): it is written {20 * math.log10(peak / 0.99):.1f} dB "
        "quieter (peak 0.99), so no sample is clipped when written."
    )


def _side_by_side(batch: torch.Tensor) -> torch.Tensor:
    """(B, 1, T) -> (1, 1, B*T): the items of a batch one after the other."""
    return batch.reshape(1, 1, -1)


def run_audio_demo(out: str | Path, seed: int = 0) -> tuple[str, dict[str, list[torch.Tensor]]]:
    """Write ``<out>/audio/<step>_<i>.wav`` and ``<step>.png`` for every step; return (HTML section, outputs)."""
    out = Path(out)
    ctx = make_audio_context(seed)
    rate: int = ctx.bended.module.sample_rate  # type: ignore[assignment]  # the model's int attribute
    sections, results = [], {}
    with torch.no_grad():
        for step in STEPS:
            ctx.bended.reset()
            outs = step.run(ctx)
            ctx.bended.reset()
            results[step.name] = outs
            sounds, levels = [], []
            for i, o in enumerate(outs):
                sound, at_full_scale = limit_peak(_side_by_side(o))
                sounds.append(sound)
                levels.append(level_note(i, _side_by_side(o), at_full_scale))
            fig = plot_audio_activations(sounds, rate, path=out / "audio" / f"{step.name}.png")
            fig.clear()
            players = ""
            for i, sound in enumerate(sounds):
                write(out / "audio" / f"{step.name}_{i}.wav", sound, rate)
                players += f'<audio controls src="audio/{step.name}_{i}.wav"></audio>'
            notes = "".join(f"<p class='note'>{html.escape(n)}</p>" for n in levels if n)
            sections.append(
                f"<section><h2>{html.escape(step.title)}</h2><p>{html.escape(step.explanation)}</p>"
                f'<img src="audio/{step.name}.png" alt="{html.escape(step.title)}"><p>{players}</p>{notes}'
                f"<pre><code>{html.escape(inspect.getsource(step.run))}</code></pre></section>"
            )
    intro = (
        "<h1>Is it the case with audio?</h1><p>The same bends on a small streaming audio autoencoder "
        "(RAVE- and DDSP-like, 16 kHz), shipped with torchbend. Each row of a picture is a spectrogram "
        "of the clips played one after the other.</p>"
    )
    return intro + "".join(sections), results
