"""`torchbend audio`: bend a sound file through an audio model, buffer by buffer, as a live patch would.

    torchbend audio in.wav --config bends.json --out out.wav                 # the shipped audio model
    torchbend audio in.wav --config bends.json --out out.wav --model runs/my_rave
    torchbend audio in.wav --config bends.json --out out.wav --model rave.ts   # a TorchScript file

The bends come from a `torchbend.BendingConfig` JSON file (``bended.bending_config().save(path)``);
weight names are those of the model's parameters, activation names those of its traced ``forward``.
A TorchScript file runs its ``forward`` on (1, 1, T) buffers, at the sample rate it holds (``sample_rate``,
``sr`` or ``sampling_rate``; 44100 when it holds none).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

BUFFER = 2048


def load_bended_audio_model(model: str | Path | None = None, buffer: int = BUFFER) -> tuple[Any, int]:
    """(a `BendedModule` traced on encode, decode and forward; its sample rate): a RAVE run, a TorchScript file,
    or the shipped model."""
    import torchbend as tb

    if model is not None and Path(model).suffix in (".ts", ".jit", ".torchscript", ".pt"):
        return _load_torchscript(Path(model), buffer)
    if model is not None:
        from .rave import load_rave

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


def bend_file(source: str | Path, config: str | Path | None, out: str | Path, model: str | Path | None = None,
              buffer: int = BUFFER, progress: bool = True) -> Path:
    """Read ``source``, run it through the bent model's ``forward`` in buffers of ``buffer`` samples, write ``out``."""
    import torchbend as tb

    from .io import read, write

    bended, rate = load_bended_audio_model(model, buffer)
    if config is not None:
        bended.bend(tb.BendingConfig.load(config))
    wav = read(source, sample_rate=rate).mean(0, keepdim=True)[None]   # (1, 1, samples), mono
    length = wav.shape[-1]
    wav = torch.nn.functional.pad(wav, (0, -length % buffer))
    chunks = range(0, wav.shape[-1], buffer)
    if progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="bending", unit="buffer")
    with torch.no_grad():
        out_wav = torch.cat([bended.forward(wav[..., i:i + buffer]) for i in chunks], -1)
    return write(out, out_wav[..., :length], rate)


def _load_torchscript(path: Path, buffer: int) -> tuple[Any, int]:
    """A TorchScript audio model, its methods among encode, decode and forward traced on a (1, 1, buffer) buffer."""
    import torchbend as tb

    from ..tracing.torchscript import private_copy

    bended = tb.load(path)
    methods = bended.engine.backend.methods()
    if "forward" not in methods:
        raise tb.BendingError(f"{path} has no forward method to run the sound through (its methods: "
                              f"{', '.join(methods)})")
    x = torch.zeros(1, 1, buffer)
    with torch.no_grad():
        if "encode" in methods:
            bended.trace("encode", x)
            if "decode" in methods:  # on a copy: the model's own streaming caches stay as loaded
                bended.trace("decode", private_copy(bended.module).encode(x))
        bended.trace("forward", x)
    rate = next((getattr(bended.module, name) for name in ("sample_rate", "sr", "sampling_rate")
                 if isinstance(getattr(bended.module, name, None), (int, float))), 44100)
    return bended, int(rate)
