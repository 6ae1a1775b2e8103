"""Cost of one `tb.optimize` step, as a ratio to one plain forward+backward of the model in the same run.

    python benchmarks/optimize.py [--rounds 15] [--calls 10] [--device cuda]

The MNIST VAE's `decode` at batch 64, one thread on CPU. The baseline is the plain model's forward, a loss and
``loss.backward()`` (gradients of all its weights), with the gradients cleared; a second row takes the gradient
of the latent only (what a step needs: no weight gradients). Each `optimize` variant learns a
per-channel gain on one decoder layer: `calls` steps per round, timed whole and divided by `calls`; variants
are interleaved round by round, and each is the median of its rounds. Memory is what autograd keeps for the
backward pass of one call (saved tensors, bytes), and on CUDA the peak allocated during a step.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

import torchbend as tb
from torchbend.zoo import make_mnist_vae
from torchbend.zoo.mnist_vae import LATENT


def saved_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """The bytes of the tensors autograd saves for the backward pass of `fn()` (each storage once)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=10, help="optimisation steps per variant and round")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    device = torch.device(args.device)

    vae = make_mnist_vae().to(device).eval()
    z = torch.randn(64, LATENT, device=device)
    loss = lambda img: -img.mean()  # noqa: E731  # thicker strokes

    def bended_with(kind: str) -> tb.BendedModule:
        b = tb.BendedModule(vae)
        b.trace("decode", z=z)
        if kind in ("activation", "both"):
            channels = b.get_activations("decoder_net_convt1", z=z[:1], fn="decode")["decoder_net_convt1"].shape[1]
            b.bend(tb.Scale(tb.Trainable(1.0, shape=(channels, 1, 1), device=device)), "decode:decoder_net_convt1")
        if kind in ("weight", "both"):
            weight = vae.get_parameter("decoder.net.convt1.weight")
            b.bend(
                tb.Scale(tb.Trainable(1.0, shape=(weight.shape[0], 1, 1, 1), device=device)),
                "decoder.net.convt1.weight",
            )
        return b

    bended = {kind: bended_with(kind) for kind in ("activation", "weight", "both")}

    def plain_steps() -> None:
        for _ in range(args.calls):
            loss(vae.decode(z)).backward()
            for p in vae.parameters():
                p.grad = None

    z_grad = z.clone().requires_grad_(True)

    def latent_steps() -> None:
        for _ in range(args.calls):
            torch.autograd.grad(loss(vae.decode(z_grad)), [z_grad])

    def optimize_steps(b: tb.BendedModule) -> Callable[[], None]:
        return lambda: tb.optimize(b, "decode", {"z": z}, loss, steps=args.calls, lr=1e-3, progress=False)

    variants: dict[str, Callable[[], object]] = {
        "plain forward+backward": plain_steps,
        "plain forward+grad of z only": latent_steps,
    }
    for kind, b in bended.items():
        variants[f"optimize step, {kind} gain"] = optimize_steps(b)
    for fn in variants.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[name].append((time.perf_counter() - start) / args.calls)
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    memory = {
        "plain forward+backward": saved_bytes(lambda: vae.decode(z)),
        "plain forward+grad of z only": saved_bytes(lambda: vae.decode(z_grad)),
    }
    for kind, b in bended.items():
        memory[f"optimize step, {kind} gain"] = saved_bytes(lambda b=b: b.decode(z=z))
    peaks: dict[str, int] = {}
    if device.type == "cuda":
        for name, fn in variants.items():
            torch.cuda.reset_peak_memory_stats()
            fn()
            peaks[name] = torch.cuda.max_memory_allocated()
    base = medians["plain forward+backward"]
    print(f"MNIST VAE decode, batch {z.shape[0]}, {device}; {args.rounds} rounds of {args.calls} steps")
    print(f"{'variant':36s} {'us/step':>9s} {'ratio':>7s} {'saved MB':>9s}" + (" peak MB" if peaks else ""))
    for name, t in medians.items():
        peak = f" {peaks[name] / 2**20:7.1f}" if peaks else ""
        print(f"{name:36s} {t * 1e6:9.1f} {t / base:7.3f} {memory[name] / 2**20:9.2f}{peak}")


if __name__ == "__main__":
    main()
