"""Per-call overhead of bending, as ratios to the plain method measured in the same run.

    python benchmarks/overhead.py [--rounds 30] [--calls 20]

The MNIST VAE's `decode` at batch 16 on CPU, one thread. Variants are interleaved round
by round and each is summarised by the median of its per-round mean call time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

import torchbend as tb
from timing import benchmark_args, interleaved_medians, print_ratios
from torchbend.zoo import make_mnist_vae

WEIGHTS = [f"decoder.net.convt{i}.weight" for i in range(4)]
ACTIVATIONS = [f"decoder_net_convt{i}" for i in range(4)]


def main() -> None:
    args = benchmark_args(__doc__, rounds=30, calls=20)

    vae = make_mnist_vae().eval()
    z = torch.randn(16, 64)

    def bended_with(weights: bool, activations: bool, live: bool = False) -> tb.BendedModule:
        b = tb.BendedModule(vae)
        b.trace("decode", z=z)
        if weights:
            for i, name in enumerate(WEIGHTS):
                b.bend(tb.Mask(prob=0.9, seed=i) if i else tb.Scale(1.1), name)
        if activations:
            for name in ACTIVATIONS:
                b.bend(tb.Affine(scale=1.1, bias=0.01), name, fn="decode")
        if live:
            b.bend(tb.Scale(tb.BendingParameter("gain", 1.0)), WEIGHTS[1])
        return b

    weights_only = bended_with(True, False)
    activations_only = bended_with(False, True)
    both = bended_with(True, True)
    live = bended_with(True, True, live=True)
    unbent = bended_with(False, False)
    gains = [1.0, 1.01]
    step = [0]

    def live_call() -> object:
        step[0] += 1
        live.update("gain", gains[step[0] % 2])
        return live.decode(z)

    variants: dict[str, Callable[[], object]] = {
        "plain decode": lambda: vae.decode(z),
        "wrapped, no bend": lambda: unbent.decode(z),
        "4 weight bends": lambda: weights_only.decode(z),
        "4 activation bends": lambda: activations_only.decode(z),
        "4 weight + 4 activation bends": lambda: both.decode(z),
        "both + a weight parameter changed every call": live_call,
    }
    with torch.no_grad():
        medians = interleaved_medians(variants, args.rounds, args.calls)
    print_ratios(
        f"MNIST VAE decode, batch 16, CPU, 1 thread; median of {args.rounds} rounds x {args.calls} calls",
        medians,
        "plain decode",
    )
    plain = medians["plain decode"]
    change = medians["both + a weight parameter changed every call"] - medians["4 weight + 4 activation bends"]
    print(f"\ncost of one parameter change (recomputing its bent weight): {change / plain:.3f} plain calls")


if __name__ == "__main__":
    main()
