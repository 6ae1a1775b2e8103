"""Throughput of bent calls from several threads, as a ratio to the plain model with the same threads.

    python benchmarks/concurrency.py [--rounds 5] [--calls 40]

The MNIST VAE's `decode` at batch 16 on CPU, torch on one thread per call. With 1, 2 and 4
Python threads calling at once, each variant's throughput (calls per second, all threads
together) is the median over interleaved rounds. Bent: 4 weight and 4 activation bends;
"bent, knob moving" adds a thread that changes a live weight parameter continuously.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

import torch

import torchbend as tb
from timing import benchmark_args
from torchbend.zoo import make_mnist_vae


def throughput(call: Callable[[], object], threads: int, calls: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def worker() -> None:
        barrier.wait()
        for _ in range(calls):
            call()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    for w in workers:
        w.join()
    return threads * calls / (time.perf_counter() - start)


def main() -> None:
    args = benchmark_args(__doc__, rounds=5, calls=40)
    vae = make_mnist_vae().eval()
    z = torch.randn(16, 64)
    bended = tb.BendedModule(vae)
    bended.trace("decode", z=z)
    gain = tb.BendingParameter("gain", 1.0)
    for i in range(4):
        bended.bend(tb.Mask(prob=0.9, seed=i) if i else tb.Scale(gain), f"decoder.net.convt{i}.weight")
        bended.bend(tb.Affine(scale=1.1, bias=0.01), f"decoder_net_convt{i}", fn="decode")
    stop = threading.Event()

    def knob() -> None:
        i = 0
        while not stop.is_set():
            gain.value = 1.0 + 0.01 * (i % 2)
            i += 1
            time.sleep(0.001)  # a controller sending ~1000 messages per second

    print(
        "MNIST VAE decode, batch 16, CPU; calls per second from N threads, median of "
        f"{args.rounds} interleaved rounds x {args.calls} calls per thread"
    )
    print(f"{'threads':>7s} {'plain':>9s} {'bent':>9s} {'ratio':>7s} {'bent, knob moving':>18s} {'ratio':>7s}")
    for threads in (1, 2, 4):
        results: dict[str, list[float]] = {"plain": [], "bent": [], "knob": []}
        for _ in range(args.rounds):
            results["plain"].append(throughput(lambda: vae.decode(z), threads, args.calls))
            results["bent"].append(throughput(lambda: bended.decode(z), threads, args.calls))
            stop.clear()
            mover = threading.Thread(target=knob)
            mover.start()
            results["knob"].append(throughput(lambda: bended.decode(z), threads, args.calls))
            stop.set()
            mover.join()
        plain, bent, moving = (statistics.median(results[k]) for k in ("plain", "bent", "knob"))
        print(f"{threads:7d} {plain:9.1f} {bent:9.1f} {bent / plain:7.3f} {moving:18.1f} {moving / plain:7.3f}")


if __name__ == "__main__":
    main()
