"""`torchbend audio`: bend a sound file through an audio model, buffer by buffer, as a live patch would.

    torchbend audio in.wav --config bends.json --out out.wav                 # the shipped audio model
    torchbend audio in.wav --config bends.json --out out.wav --model runs/my_rave
    torchbend audio in.wav --config bends.json --out out.wav --model rave.ts   # a TorchScript file

    torchbend audio in.wav --bend 'Select(Bias(1.0), channels=[0])@decode:z' --out up.wav  # an octave up
    torchbend audio in.wav --method encode --out z.pt       # latents; --method decode turns them into sound

The bends come from a `torchbend.BendingConfig` JSON file (``bended.bending_config().save(path)``) and
``--bend`` options; weight names are those of the model's parameters, activation names those of its traced
``forward``, ``encode`` and ``decode`` (``decode:z`` bends the latents; with ``--method forward`` such targets
run ``forward`` as ``decode(encode(x))``). The output has the input's sample rate and RMS level unless asked
otherwise, and is never clipped silently.
A TorchScript file runs its ``forward`` on (1, 1, T) buffers, at the sample rate it holds (``sample_rate``,
``sr`` or ``sampling_rate``; 44100 when it holds none).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import torch

from ..errors import BendingError

BUFFER = 2048


def load_bended_audio_model(model: str | Path | None = None, buffer: int = BUFFER) -> tuple[Any, int]:
    """(a `BendedModule` traced on encode, decode and forward; its sample rate): a RAVE run, a TorchScript file,
    or the shipped model."""
    import torchbend as tb

    if model is not None and Path(model).suffix in (".ts", ".jit", ".torchscript", ".pt"):
        return _load_torchscript(Path(model), buffer)
    if model is not None:
        from ..audio.rave import load_rave

        bended = load_rave(model, buffer_size=buffer)
        return bended, bended.module.sample_rate
    from ..zoo.audio_vae import load_audio_vae

    vae = load_audio_vae()
    bended = tb.BendedModule(vae, buffers=[r".*pad.*|.*cache.*"])
    x = torch.zeros(1, 1, buffer)
    bended.trace("encode", x)
    bended.trace("decode", vae.encode(x))
    bended.trace("forward", x)
    vae.reset_cache()
    return bended, vae.sample_rate


def bend_file(
    source: str | Path,
    config: Any,
    out: str | Path,
    model: str | Path | None = None,
    buffer: int = BUFFER,
    progress: bool = True,
    method: str = "forward",
    sample_rate: int | None = None,
    match_level: bool = True,
) -> Path:
    """Read ``source``, run it through the bent model in buffers of ``buffer`` samples, write ``out``.

        >>> bend_file("in.wav", tb.BendingConfig((tb.Scale(-1.0), "decode:z")), "out.wav")

    `config` is a `BendingConfig`, a path to one, a list of them, or None. `method` is ``forward`` (sound to
    sound; a config whose activation targets are in ``encode``/``decode`` runs it as ``decode(encode(x))``, what
    ``forward`` is for the shipped model and RAVE), ``encode`` (sound to latents, written as a ``.pt`` file) or
    ``decode`` (latents read from a ``.pt`` file, to sound). A bend target outside what runs is an error. Sound
    comes back at the input's sample rate (or `sample_rate`), at the input's RMS level when `match_level`; a
    peak past full scale is scaled down (with `match_level`) or its clipped samples counted, on stderr.
    """
    import torchbend as tb

    from ..audio.io import resample, write
    from .cli import apply_configs

    if method not in ("forward", "encode", "decode"):
        raise tb.BendingError(f"method must be forward, encode or decode, got {method!r}")
    configs = [
        c if isinstance(c, tb.BendingConfig) else tb.BendingConfig.load(c)
        for c in (config if isinstance(config, (list, tuple)) else [] if config is None else [config])
    ]
    if method == "encode" and Path(out).suffix != ".pt":
        raise tb.BendingError(f"--method encode writes latents, not sound: give --out a .pt file, not {out}")
    bended, rate = load_bended_audio_model(model, buffer)
    runs = [method]
    named = {bended.engine.names.split_method(t)[0] for c in configs for _, targets in c for t in targets}
    if (
        method == "forward"
        and named & {"encode", "decode"}
        and "forward" not in named
        and {"encode", "decode"} <= set(bended.engine.records)
    ):
        runs = ["encode", "decode"]
        print("torchbend: the bends target encode/decode, so forward runs as decode(encode(x))", file=sys.stderr)
    missing = [m for m in runs if m not in bended.engine.records]
    if missing:
        raise tb.BendingError(
            f"the model has no traced {' or '.join(missing)} (traced: {', '.join(bended.engine.records)})"
        )
    apply_configs(bended, configs, runs, "give --method {method}")
    reference = None  # the input sound, mono, whose level the output takes
    if method == "decode":
        wav, in_rate = _latents(source), None
        chunk = next(iter(bended.engine.records["decode"].activations.values())).shape[-1]  # the traced frames
    else:
        sound, in_rate = _sound(source)
        reference = sound.mean(0) if match_level else None
        wav = resample(sound.mean(0, keepdim=True)[None], in_rate, rate)  # (1, 1, samples), mono
        chunk = buffer
    step = {"forward": bended.forward, "encode": bended.encode, "decode": bended.decode}[method]
    if runs == ["encode", "decode"]:
        step = lambda x: bended.decode(bended.encode(x))  # noqa: E731
    length = wav.shape[-1]
    padded = torch.nn.functional.pad(wav, (0, -length % chunk))
    chunks = range(0, padded.shape[-1], chunk)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="bending", unit="buffer")
    with torch.no_grad():
        result = torch.cat([step(padded[..., i : i + chunk]) for i in chunks], -1)
    if method == "encode":  # the frames that hold the input, ceil(length / ratio)
        ratio = padded.shape[-1] // result.shape[-1]
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        torch.save(result[..., : -(-length // ratio)].contiguous(), out)
        return Path(out)
    result = result[..., : length * (result.shape[-1] // padded.shape[-1])]  # decode: ratio samples a frame
    out_rate = sample_rate or in_rate or rate
    result = resample(result, rate, out_rate)
    return write(out, level(result, reference), out_rate)


def _sound(path: str | Path) -> tuple[torch.Tensor, int]:
    """The sound of a file and its rate; a file that is missing or not sound is a `BendingError`."""
    from ..audio.io import read

    if not Path(path).is_file():
        raise BendingError(f"no such sound file: {path}")
    try:
        return read(path)
    except RuntimeError as error:  # soundfile's errors for what it cannot read
        raise BendingError(f"{path} cannot be read as sound: {error}") from None


def _latents(path: str | Path) -> torch.Tensor:
    """Latents (1, channels, frames) from a .pt file holding one tensor (as ``--method encode`` writes them)."""
    from .input_spec import _value

    z = _value(str(path), str(path), torch.Generator())
    if z.ndim not in (2, 3) or not z.is_floating_point():
        raise BendingError(f"{path}: expected latents of shape (1, channels, frames), got {tuple(z.shape)}")
    return z if z.ndim == 3 else z[None]


def level(wav: torch.Tensor, reference: torch.Tensor | None) -> torch.Tensor:
    """`wav` at the RMS level of `reference` (when given), never clipped silently: a peak past full scale is
    scaled down to it when matching levels, else its clipped samples are counted; both said on stderr."""
    wav = wav.float()
    peak = float(wav.abs().max()) if wav.numel() else 0.0
    rms = float(wav.pow(2).mean().sqrt()) if wav.numel() else 0.0
    if reference is not None and rms > 0:
        gain = float(reference.pow(2).mean().sqrt()) / rms
        if peak * gain > 1:
            print(
                f"torchbend: matching the input's level would clip (peak {peak * gain:.2f}); the output is "
                f"scaled to a peak of 1 instead, {20 * math.log10(peak * gain):.1f} dB below the input's level",
                file=sys.stderr,
            )
            gain = 1 / peak
        else:
            print(
                f"torchbend: output level matched to the input's (gain {20 * math.log10(max(gain, 1e-12)):+.1f} "
                "dB; --no-match-level keeps the model's)",
                file=sys.stderr,
            )
        return wav * gain
    if peak > 1:
        clipped = int((wav.abs() > 1).sum())
        print(
            f"torchbend: the output peaks at {peak:.2f}: {clipped} of {wav.numel()} samples are clipped to "
            "full scale (--match-level scales it instead)",
            file=sys.stderr,
        )
    return wav


def _load_torchscript(path: Path, buffer: int) -> tuple[Any, int]:
    """A TorchScript audio model, its methods among encode, decode and forward traced on a (1, 1, buffer) buffer."""
    import torchbend as tb

    from ..torchscript.graph import private_copy

    bended = tb.load(path)
    methods = bended.engine.backend.methods()
    if "forward" not in methods:
        raise tb.BendingError(
            f"{path} has no forward method to run the sound through (its methods: {', '.join(methods)})"
        )
    x = torch.zeros(1, 1, buffer)
    with torch.no_grad():
        if "encode" in methods:
            bended.trace("encode", x)
            if "decode" in methods:  # on a copy: the model's own streaming caches stay as loaded
                bended.trace("decode", private_copy(bended.module).encode(x))
        bended.trace("forward", x)
    rate = next(
        (
            getattr(bended.module, name)
            for name in ("sample_rate", "sr", "sampling_rate")
            if isinstance(getattr(bended.module, name, None), (int, float))
        ),
        44100,
    )
    return bended, int(rate)
