"""Cost of the network-bending toolbox, as ratios to plain calls in the same run.

    python benchmarks/toolbox.py [--rounds 20] [--calls 10]

Shipped MNIST VAE `decode` at batch 16 on CPU, one thread. Each transform bends
`decoder_net_convt1` (every channel); `Select` applies a blur to half the channels, against
the blur on the whole tensor and against a mask-based selection (blur everything, keep half);
a sweep of 64 values of a live parameter is compared with 64 plain calls.
"""

from __future__ import annotations

import statistics

import torch

import torchbend as tb
from timing import benchmark_args, interleaved_medians, per_call, print_ratios
from torchbend.zoo import load_mnist_vae

LAYER = "decoder_net_convt1"


class MaskSelect(tb.BendingCallback):
    """Selection by a mask, for comparison: the callback runs on the whole tensor."""

    def __init__(self, callback: tb.BendingCallback, channels: list[int], size: int) -> None:
        super().__init__()
        self.callback = callback
        self.mask = torch.zeros(1, size, 1, 1, dtype=torch.bool)
        self.mask[:, channels] = True

    def forward(self, x: torch.Tensor, state: object) -> torch.Tensor:
        return torch.where(self.mask, self.callback(x, None), x)


def transforms() -> dict[str, tb.BendingCallback]:
    return {
        "Rotate(30)": tb.Rotate(30),
        "Rotate(30, wrap)": tb.Rotate(30, padding="wrap"),
        "Translate(0.1, 0.2)": tb.Translate(0.1, 0.2),
        "Zoom(1.5, reflection)": tb.Zoom(1.5, padding="reflection"),
        "Flip(-1)": tb.Flip(-1),
        "Erode(3)": tb.Erode(3),
        "Dilate(3)": tb.Dilate(3),
        "Invert()": tb.Invert(),
        "BinaryThreshold(0)": tb.BinaryThreshold(0.0),
        "Ablate()": tb.Ablate(),
        "Clamp(-1, 1)": tb.Clamp(-1, 1),
        "Quantize(4)": tb.Quantize(4),
        "Sobel()": tb.Sobel(),
        "Blur(1)": tb.Blur(1.0),
    }


def main() -> None:
    args = benchmark_args(__doc__, rounds=20, calls=10)
    vae = load_mnist_vae().eval()
    z = torch.randn(16, 64)
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    channels = bended.activation_shape(LAYER, fn="decode")[1]
    half = list(range(0, channels, 2))

    def bent(cb: tb.BendingCallback) -> tb.BendedModule:
        b = tb.BendedModule(vae)
        b.trace("decode", z=z)
        b.bend(cb, LAYER, fn="decode")
        return b

    variants = {"plain decode": lambda: vae.decode(z)}
    for name, cb in transforms().items():
        b = bent(cb)
        variants[name] = lambda b=b: b.decode(z=z)
    for name, cb in {
        "Blur(2) on every channel": tb.Blur(2.0),
        f"Select(Blur(2), {len(half)} of {channels} channels)": tb.Select(tb.Blur(2.0), half),
        f"mask selection of Blur(2), {len(half)} channels": MaskSelect(tb.Blur(2.0), half, channels),
        "Rotate(30) on every channel": tb.Rotate(30),
        f"Select(Rotate(30), {len(half)} channels)": tb.Select(tb.Rotate(30), half),
    }.items():
        b = bent(cb)
        variants[name] = lambda b=b: b.decode(z=z)
    with torch.no_grad():
        medians = interleaved_medians(variants, args.rounds, args.calls)
    print_ratios(
        f"shipped MNIST VAE decode, {LAYER} bent, batch 16, CPU, 1 thread; "
        f"median of {args.rounds} rounds x {args.calls} calls",
        medians,
        "plain decode",
    )

    angle = tb.BendingParameter("angle", 0.0)
    swept = bent(tb.Rotate(angle))
    values = tb.curves.linear(0, 360, 64)
    sweeps = {
        "64 plain decodes": lambda: [vae.decode(z) for _ in values],
        "sweep of 64 angles": lambda: tb.sweep(swept, "decode", {"z": z}, angle, values),
    }
    times: dict[str, list[float]] = {name: [] for name in sweeps}
    with torch.no_grad():
        for _ in range(max(1, args.rounds // 4)):  # interleaved, one sweep per variant and round
            for name, fn in sweeps.items():
                times[name].append(per_call(fn, 1))
    sweep_medians = {name: statistics.median(ts) for name, ts in times.items()}
    print()
    print_ratios("sweep of a live Rotate angle vs plain calls", sweep_medians, "64 plain decodes")


if __name__ == "__main__":
    main()
