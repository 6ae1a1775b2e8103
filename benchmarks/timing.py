"""Interleaved timing shared by the benchmarks: medians of per-round mean call times."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


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
