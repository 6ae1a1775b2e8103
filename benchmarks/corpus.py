"""Models from the wild: trace time, bent/plain call ratio and export status of every corpus architecture.

    python benchmarks/corpus.py [--rounds 7] [--calls 5] [--no-exports] [--only NAME]

For each model of tests/corpus_models.py (real transformers and diffusers architectures, tiny configs, random
weights; the same models tests/test_corpus.py checks): the median time to trace the method at op level, the
median call time with one mid-graph activation and one weight bent (`tb.Scale(1.01)`), as a ratio to the plain
model called in the same interleaved rounds, and whether `script()` and `export()` (torch.export) take the bent
model and give its outputs (``ok``, or the first words of the error). CPU, one thread. Prints a Markdown table.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

import torchbend as tb
from timing import benchmark_args, interleaved_medians

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from corpus_models import WILD, Wild, mid_activation, outputs  # noqa: E402


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return len(a) == len(b) and all(torch.allclose(x, y, atol=1e-4) for x, y in zip(a, b))


def _status(attempt) -> str:
    try:
        return "ok" if attempt() else "differs"
    except Exception as error:  # the table says why, in a few words
        text = str(error).replace("|", "/").replace("\n", " ")
        return f"fails: {text[:90]}"


def measure(case: Wild, rounds: int, calls: int, exports: bool) -> dict[str, str]:
    model = case.build()
    args, kwargs = case.inputs()
    plain = case.run(model)
    times = []
    for _ in range(3):
        bended = tb.BendedModule(model)
        start = time.perf_counter()
        bended.trace(case.method, *args, **kwargs)
        times.append(time.perf_counter() - start)
    activation = mid_activation(bended, case, plain)
    weights = [n for n, p in model.named_parameters() if p.ndim >= 2]
    bended.bend(tb.Scale(1.01), weights[len(weights) // 2])
    bended.bend(tb.Scale(1.01), activation, fn=case.method)
    with torch.no_grad():
        medians = interleaved_medians(
            {"plain": lambda: case.run(model), "bent": lambda: case.run(bended)}, rounds, calls
        )
    row = {
        "model": case.name,
        "trace ms": f"{statistics.median(times) * 1e3:.0f}",
        "plain ms": f"{medians['plain'] * 1e3:.2f}",
        "bent/plain": f"{medians['bent'] / medians['plain']:.2f}",
        "bent activation": activation,
    }
    if exports:
        bent = case.run(bended)
        row["script()"] = _status(lambda: _same(case.run(bended.script()), bent))
        tensors = [*args, *kwargs.values()]

        def exported() -> bool:
            with tempfile.TemporaryDirectory() as folder:
                program = torch.export.load(str(bended.export(Path(folder) / "m.pt2", case.method, *tensors)))
                return _same(outputs(program.module()(*tensors)), bent)

        row["export()"] = _status(exported)
    return row


def main() -> None:
    only = ""
    if "--only" in sys.argv:  # models whose name holds this text
        at = sys.argv.index("--only")
        only = sys.argv[at + 1]
        del sys.argv[at : at + 2]
    args = benchmark_args(__doc__, rounds=7, calls=5, flags={"no-exports": "leave out script() and export()"})
    warnings.simplefilter("ignore")
    print(f"CPU, 1 thread; medians of {args.rounds} interleaved rounds x {args.calls} calls\n")
    rows = []
    for case in WILD:
        if only and only not in case.name:
            continue
        try:
            rows.append(measure(case, args.rounds, args.calls, not args.no_exports))
        except Exception as error:
            rows.append({"model": case.name, "trace ms": f"fails: {type(error).__name__}: {str(error)[:80]}"})
        row = rows[-1]
        if len(rows) == 1:
            print("| " + " | ".join(row) + " |\n|" + "---|" * len(row))
        print("| " + " | ".join(row.values()) + " |", flush=True)


if __name__ == "__main__":
    main()
