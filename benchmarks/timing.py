"""Interleaved timing shared by the benchmarks: medians of per-round mean call times."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch


def benchmark_args(
    doc: str, rounds: int = 30, calls: int = 20, flags: dict[str, str] | None = None
) -> argparse.Namespace:
    """Parse ``--rounds``, ``--calls`` and the on/off `flags` (name: help); then run on one thread with a
    fixed seed, as every benchmark does."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=rounds, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--calls", type=int, default=calls, help="calls per variant and round (default: %(default)s)")
    for name, text in (flags or {}).items():
        parser.add_argument(f"--{name}", action="store_true", help=text)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return args


def per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def interleaved_medians(variants: dict[str, Callable[[], object]], rounds: int, calls: int) -> dict[str, float]:
    """Seconds per call of each variant: each round runs every variant in turn; median over rounds."""
    for fn in variants.values():  # warm up
        per_call(fn, 3)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times[name].append(per_call(fn, calls))
    return {name: statistics.median(ts) for name, ts in times.items()}


def print_ratios(title: str, medians: dict[str, float], baseline: str) -> None:
    base = medians[baseline]
    print(title)
    print(f"{'variant':52s} {'us/call':>9s} {'ratio':>7s}")
    for name, t in medians.items():
        print(f"{name:52s} {t * 1e6:9.1f} {t / base:7.3f}")
