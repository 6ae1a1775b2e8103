"""Bending a loaded TorchScript file: the bent `decode` vs the loaded module's own `decode`.

    python benchmarks/torchscript.py [--rounds 30] [--calls 20]

A RAVE-like streaming model (64 channels, ratios 4 x 4 x 2), saved and loaded with
torch.jit; `decode` on latents for 2048-sample buffers, CPU, one thread. The bent variant
has 2 weight bends and 2 activation bends, one of each reading a live parameter; the
exported variant is `script()` of the same bends. Ratios to the plain call in the same run.
The activation bends' callbacks have TorchScript forms, so eager calls run them compiled into
the graph; ``--python-bends`` adds a variant whose activation bends are Python calls instead.
"""

from __future__ import annotations

import io
import warnings

import torch

import torchbend as tb
from timing import benchmark_args, interleaved_medians, print_ratios
from torchbend.zoo import make_streaming_model

RATIOS = (4, 4, 2)


def main() -> None:
    args = benchmark_args(
        __doc__,
        rounds=30,
        calls=20,
        flags={"python-bends": "add a variant running the activation bends as Python calls"},
    )
    warnings.simplefilter("ignore")

    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(make_streaming_model(channels=64, latent=16, ratios=RATIOS)), buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    z = torch.randn(1, 16, 2048 // 32)

    plain = tb.BendedModule(loaded)
    variants = {}
    for python in (False, True) if args.python_bends else (False,):
        bent = tb.BendedModule(loaded)
        bent.trace("decode", z)
        names = bent.activation_names("decode")
        gain = tb.BendingParameter("gain", 1.1)
        bent.bend(tb.Scale(gain), "decoder.0.conv.weight")
        bent.bend(tb.Scale(0.9), "decoder.2.weight")
        scale, bias = tb.Scale(gain), tb.Bias(0.01)
        if python:  # the same callbacks without their TorchScript forms
            scale.script = bias.script = _no_script
        bent.bend(scale, "decode:" + next(n for n in names if n.startswith("decoder.1:")))
        bent.bend(bias, "decode:" + next(n for n in names if n.startswith("decoder.5:")))
        variants[python] = bent
    scripted = variants[False].script()
    with torch.no_grad():
        medians = interleaved_medians(
            {
                "plain decode": lambda: loaded.decode(z),
                "BendedModule, no bends": lambda: plain.decode(z),
                "BendedModule, 2 weight + 2 activation bends": lambda: variants[False].decode(z),
                **(
                    {"the same, activation bends as Python calls": lambda: variants[True].decode(z)}
                    if args.python_bends
                    else {}
                ),
                "script() of the bent module": lambda: scripted.decode(z),
            },
            args.rounds,
            args.calls,
        )
    print_ratios(
        f"RAVE-like TorchScript decode, 2048 samples, CPU, 1 thread; "
        f"median of {args.rounds} rounds x {args.calls} calls",
        medians,
        "plain decode",
    )


def _no_script(x: str, state: object, ctx: object) -> str:
    raise NotImplementedError("no TorchScript form")


if __name__ == "__main__":
    main()
