"""Streaming cost of bending the shipped audio model, as ratios to the plain model measured in the same run.

    python benchmarks/audio.py [--rounds 30] [--calls 20] [--small-only]

`decode` and `forward` on consecutive 2048-sample buffers, CPU, one thread, for the shipped model
(16 kHz: a 128 ms period) and for a model of the same code about the size of a RAVE v2 (random
weights, taken as 44.1 kHz: a 46.4 ms period). Variants: plain; bent (one weight bend and one
activation bend); bent with both bends' live parameters changed before every buffer; and the
same two as exported by `script()`, the parameters set through the export's setters as nn~
does. Each call is timed on its own; the table gives the median per-call time, the fraction of
the buffer period used (median and 95th percentile), and the ratio to plain.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

import torchbend as tb
from timing import benchmark_args
from torchbend.zoo.audio_vae import load_audio_vae, make_audio_vae

BUFFER = 2048
WEIGHT = "decoder.harmonics.amplitude.2.weight"  # the branch that carries the sound, as the audio demo bends it
ACTIVATION = "decoder_harmonics_amplitude_1"


def per_call_times(variants: dict[str, Callable[[], object]], rounds: int, calls: int) -> dict[str, list[float]]:
    """Seconds of every call, variants interleaved round by round."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():
        for _ in range(3):
            fn()
    for _ in range(rounds):
        for name, fn in variants.items():
            for _ in range(calls):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    args = benchmark_args(__doc__, rounds=30, calls=20, flags={"small-only": "skip the RAVE-v2-size model"})
    models = [("shipped audio model", load_audio_vae(), 16000)]
    if not args.small_only:
        torch.manual_seed(0)
        big = make_audio_vae(channels=(128, 256, 512, 1024), latent_size=128, width=1024).eval().warm_up()
        models.append(
            (
                f"RAVE-v2-size model ({sum(p.numel() for p in big.parameters()) / 1e6:.1f} M parameters, "
                "random weights)",
                big,
                44100,
            )
        )
    for label, vae, rate in models:
        run(label, vae, rate, args.rounds, args.calls)


def run(label: str, vae: torch.nn.Module, rate: int, rounds: int, calls: int) -> None:
    period = BUFFER / rate
    x = 0.3 * torch.randn(1, 1, BUFFER)
    with torch.no_grad():
        z = vae.encode(x)
    vae.reset_cache()

    def bended(live: bool) -> tuple[tb.BendedModule, tb.BendingParameter, tb.BendingParameter]:
        b = tb.BendedModule(vae, buffers=[r".*pad.*|.*cache.*"])
        b.trace("decode", z)
        b.trace("forward", x)
        scale, gain = tb.BendingParameter("scale", 1.5), tb.BendingParameter("gain", 0.8)
        b.bend(tb.Scale(scale=scale if live else 1.5), WEIGHT)
        b.bend(tb.Scale(scale=gain if live else 0.8), ACTIVATION)
        vae.reset_cache()
        return b, scale, gain

    bent, _, _ = bended(live=False)
    live, _, _ = bended(live=True)
    exported = bent.script()  # the bends compiled in, as a host such as nn~ runs them
    exported_live = live.script()
    step = [0]

    def moved(method: str, arg: torch.Tensor) -> Callable[[], object]:
        def call() -> object:
            step[0] += 1
            live.update("scale", 1.5 + 0.01 * (step[0] % 2))
            live.update("gain", 0.8 - 0.01 * (step[0] % 2))
            return getattr(live, method)(arg)

        return call

    def exported_moved(method: str, arg: torch.Tensor) -> Callable[[], object]:
        def call() -> object:
            step[0] += 1
            exported_live.set_scale(1.5 + 0.01 * (step[0] % 2))
            exported_live.set_gain(0.8 - 0.01 * (step[0] % 2))
            return getattr(exported_live, method)(arg)

        return call

    for method, arg in (("decode", z), ("forward", x)):
        variants: dict[str, Callable[[], object]] = {
            f"plain {method}": lambda m=method, a=arg: getattr(vae, m)(a),
            "1 weight + 1 activation bend": lambda m=method, a=arg: getattr(bent, m)(a),
            "both, 2 parameters changed every buffer": moved(method, arg),
            "exported (script()), both bends": lambda m=method, a=arg: getattr(exported, m)(a),
            "exported, 2 parameters set every buffer": exported_moved(method, arg),
        }
        with torch.no_grad():
            times = per_call_times(variants, rounds, calls)
        base = statistics.median(times[f"plain {method}"])
        print(
            f"{label} {method}, {BUFFER}-sample buffers ({period * 1e3:.1f} ms at {rate} Hz), "
            f"CPU, 1 thread; {rounds} rounds x {calls} calls"
        )
        print(f"{'variant':44s} {'ms/call':>8s} {'period median':>14s} {'period p95':>11s} {'ratio':>7s}")
        for name, ts in times.items():
            median = statistics.median(ts)
            p95 = sorted(ts)[min(len(ts) - 1, int(0.95 * len(ts)))]
            print(f"{name:44s} {median * 1e3:8.2f} {median / period:14.3f} {p95 / period:11.3f} {median / base:7.3f}")
        print()


if __name__ == "__main__":
    main()
