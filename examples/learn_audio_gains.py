"""Learn per-channel gains of the audio model's decoder so that its sound matches a target's spectrum.

    python examples/learn_audio_gains.py [--steps 60] [--out DIR]

The shipped audio autoencoder (`tb.zoo.load_audio_vae`, 16 kHz) encodes a soft tone at 220 Hz (a sine with
two quiet overtones). A `tb.Trainable` gain per channel of the decoder's harmonic-amplitude network (256
channels, ``decoder_harmonics_amplitude_3``) is learned so that the decoded sound's spectrum matches a bright
sawtooth at the same pitch: the loss compares log magnitude spectra at three resolutions. With ``--out``,
the source, the target, and the decoded sound before and after are written as WAV files (needs soundfile).
"""

import argparse
import math
from pathlib import Path

import torch

import torchbend as tb
from torchbend.zoo.audio_vae import SAMPLE_RATE

SECONDS = 0.512


def tone(partials: list[float], f0: float = 220.0) -> torch.Tensor:
    t = torch.arange(int(SECONDS * SAMPLE_RATE)) / SAMPLE_RATE
    wav = sum(a * torch.sin(2 * math.pi * f0 * (k + 1) * t) for k, a in enumerate(partials))
    return (0.5 * wav / wav.abs().max()).reshape(1, 1, -1)


def spectral_loss(wav: torch.Tensor, target: torch.Tensor, sizes: tuple[int, ...] = (256, 512, 1024)) -> torch.Tensor:
    """Mean distance between log magnitude spectra at several resolutions (a multi-resolution STFT loss)."""
    total = wav.new_zeros(())
    for n in sizes:
        window = torch.hann_window(n)
        spectra = [
            torch.stft(x.reshape(1, -1), n, n // 4, window=window, return_complex=True).abs() for x in (wav, target)
        ]
        total = total + (torch.log(spectra[0] + 1e-4) - torch.log(spectra[1] + 1e-4)).abs().mean()
    return total / len(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--out", help="a folder to write source.wav, target.wav, before.wav and after.wav into")
    args = parser.parse_args()
    torch.manual_seed(0)
    vae = tb.zoo.load_audio_vae(streaming=False)
    source = tone([1.0, 0.1, 0.05])
    target = tone([1.0 / (k + 1) for k in range(30)])  # a sawtooth: every harmonic, falling as 1/k
    with torch.no_grad():
        z = vae.encode(source)
        before = vae.decode(z)
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    gains = tb.Trainable(1.0, shape=(256, 1), name="gains")
    bended.bend(tb.Scale(gains), "decode:decoder_harmonics_amplitude_3")
    run = tb.optimize(
        bended, "decode", {"z": z}, lambda wav: spectral_loss(wav, target), steps=args.steps, lr=0.05, progress=False
    )
    with torch.no_grad():
        after = bended.decode(z=z)
    print(
        f"spectral distance to the sawtooth: {spectral_loss(before, target):.3f} before, "
        f"{spectral_loss(after, target):.3f} after ({len(run.history)} steps)"
    )
    print(f"gains: min {gains.value.min():.2f}, max {gains.value.max():.2f}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name, wav in (("source", source), ("target", target), ("before", before), ("after", after)):
            tb.audio.write(out / f"{name}.wav", wav[0], SAMPLE_RATE)
        print("wrote", ", ".join(f"{n}.wav" for n in ("source", "target", "before", "after")), "to", out)


if __name__ == "__main__":
    main()
