"""Sweeps: 64 values in one per-example call vs 64 bent calls, and a Ray grid vs the local backend.

    python benchmarks/sweep.py [--rounds 5] [--calls 1] [--points 256] [--no-ray]

The MNIST VAE's `decode` on 16 latents (and on 1, where per-call costs dominate), one torch
thread. Part 1: 64 values of one weight bend (Scale of decoder.net.convt1.weight) and of one
activation bend (Scale of decoder_net_convt0), as one call of batch 64 x 16 with per-example
values, against 64 sequential bent calls of batch 16 (each setting the parameter), interleaved;
the speed-up is sequential / batched.
Part 2: a grid of `--points` points (2 targets x 2 callbacks x values) rendered by the local
backend (one process) and by Ray with 2 workers (after Ray is started, which is timed apart).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import torchbend as tb
from timing import interleaved_medians
from torchbend.zoo import make_mnist_vae

VALUES = 64


def per_example_part(rounds: int, calls: int, latents: int) -> None:
    vae = make_mnist_vae().eval()
    z = torch.randn(latents, 64)
    for kind, target in (("weight", "decoder.net.convt1.weight"), ("activation", "decoder_net_convt0")):
        medians = time_bend(vae, z, kind, target, rounds, calls)
        print(
            f"{kind:12s} {latents:8d} {medians['sequential'] * 1e3:12.1f} {medians['batched'] * 1e3:11.1f} "
            f"{medians['sequential'] / medians['batched']:9.2f}"
        )


def time_bend(
    vae: torch.nn.Module, z: torch.Tensor, kind: str, target: str, rounds: int, calls: int
) -> dict[str, float]:
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    gain = tb.BendingParameter("gain", 1.0)
    bended.bend(tb.Scale(gain), target, **({"fn": "decode"} if kind == "activation" else {}))
    values = torch.linspace(0.0, 2.0, VALUES)
    big = z.repeat(VALUES, 1)
    column = values.repeat_interleave(len(z))

    def sequential() -> None:
        with torch.no_grad():
            for v in values.tolist():
                gain.value = v
                bended.decode(z)

    def batched() -> None:
        with torch.no_grad():
            bended.decode(big, per_example={"gain": column})

    return interleaved_medians({"sequential": sequential, "batched": batched}, rounds, calls)


def ray_part(points: int, rounds: int) -> None:
    import ray

    vae = make_mnist_vae().eval()
    inputs = {"z": torch.randn(16, 64)}
    per = max(1, points // 4)
    grid = tb.grid(
        ["decoder_net_convt0", "decoder.net.convt1.weight"],
        {"scale": tb.Scale, "bias": tb.Bias},
        torch.linspace(-1.0, 2.0, per).tolist(),
    )
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - start
    local, remote = [], []
    try:
        for _ in range(rounds):
            start = time.perf_counter()
            tb.run_grid(vae, "decode", inputs, grid, progress=False)
            local.append(time.perf_counter() - start)
            start = time.perf_counter()
            tb.run_grid(vae, "decode", inputs, grid, backend="ray", workers=2, progress=False)
            remote.append(time.perf_counter() - start)
    finally:
        ray.shutdown()
    lo, re = statistics.median(local), statistics.median(remote)
    print(
        f"grid of {len(grid)} points: local {lo:.2f} s, ray (2 workers) {re:.2f} s, ratio ray/local {re / lo:.2f}; "
        f"ray start-up {startup:.1f} s (not included)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1)
    parser.add_argument("--points", type=int, default=256)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray part")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    print(f"{'bend':12s} {'latents':>8s} {'64 calls ms':>12s} {'batched ms':>11s} {'speed-up':>9s}")
    for latents in (16, 1):  # 16: the benchmark's case; 1: where per-call costs dominate
        per_example_part(args.rounds, args.calls, latents)
    if not args.no_ray:
        ray_part(args.points, max(1, args.rounds // 2))


if __name__ == "__main__":
    main()
