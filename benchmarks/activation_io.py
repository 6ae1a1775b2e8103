"""Cost of reading and feeding activations, as ratios to one plain call in the same run.

    python benchmarks/activation_io.py [--rounds 30] [--calls 20]

MNIST VAE `decode` at batch 16 on CPU, one thread: `get_activations` of every activation
vs one plain call, and `from_activations` at the middle layer vs a full bended call.
"""

from __future__ import annotations

import torch

import torchbend as tb
from timing import benchmark_args, interleaved_medians, print_ratios
from torchbend.zoo import make_mnist_vae


def main() -> None:
    args = benchmark_args(__doc__, rounds=30, calls=20)

    vae = make_mnist_vae().eval()
    z = torch.randn(16, 64)
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    every = bended.activation_names("decode")
    middle = "decoder_net_convt2"
    with torch.no_grad():
        acts = bended.get_activations(middle, z=z, fn="decode")
        variants = {
            "plain decode": lambda: vae.decode(z),
            "bended decode": lambda: bended.decode(z),
            f"get_activations of all {len(every)} activations": lambda: bended.get_activations(
                *every, z=z, fn="decode"
            ),
            f"get_activations of {middle}": lambda: bended.get_activations(middle, z=z, fn="decode"),
            f"from_activations at {middle}": lambda: bended.from_activations(middle, fn="decode", **acts),
        }
        medians = interleaved_medians(variants, args.rounds, args.calls)
    print_ratios(
        f"MNIST VAE decode, batch 16, CPU, 1 thread; median of {args.rounds} rounds x {args.calls} calls",
        medians,
        "plain decode",
    )


if __name__ == "__main__":
    main()
