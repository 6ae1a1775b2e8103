"""Exported bent models: TorchScript and torch.export calls vs the eager bent call vs the plain call.

    python benchmarks/export.py [--rounds 30] [--calls 20]

MNIST VAE `decode` at batch 16 on CPU, one thread, with 4 weight bends and 4 activation
bends driven by one live parameter; ratios to the plain call measured in the same run.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import torch

import torchbend as tb
from timing import benchmark_args, interleaved_medians, print_ratios
from torchbend.zoo import make_mnist_vae


def main() -> None:
    args = benchmark_args(__doc__, rounds=30, calls=20)
    warnings.simplefilter("ignore")

    vae = make_mnist_vae().eval()
    z = torch.randn(16, 64)
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    gain = tb.BendingParameter("gain", 1.1)
    for i in range(4):
        bended.bend(tb.Scale(gain), f"decoder.net.convt{i}.weight")
        bended.bend(tb.Affine(scale=gain, bias=0.01), f"decoder_net_convt{i}", fn="decode")
    scripted = bended.script()
    with tempfile.TemporaryDirectory() as folder:
        program = torch.export.load(str(bended.export(Path(folder) / "bent.pt2", "decode", z))).module()
    value = torch.tensor(1.1)
    with torch.no_grad():
        medians = interleaved_medians(
            {
                "plain decode": lambda: vae.decode(z),
                "eager bent decode": lambda: bended.decode(z),
                "TorchScript bent decode": lambda: scripted.decode(z),
                "torch.export bent decode (gain as input)": lambda: program(z, gain=value),
            },
            args.rounds,
            args.calls,
        )
    print_ratios(
        f"MNIST VAE decode, batch 16, CPU, 1 thread, 4 weight + 4 activation bends; "
        f"median of {args.rounds} rounds x {args.calls} calls",
        medians,
        "plain decode",
    )


if __name__ == "__main__":
    main()
