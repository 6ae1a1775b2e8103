"""The benchmarks run end to end and print their ratio tables (speed itself is not asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize("script, baseline", [("overhead.py", "plain decode"), ("activation_io.py", "plain decode"),
                                              ("export.py", "plain decode"),
                                              ("audio.py", "plain decode")])
def test_ratio_benchmarks_print_every_variant_against_the_baseline(script, baseline):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), "--rounds", "1", "--calls", "1"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith(baseline)]
    assert rows and rows[0].split()[-1] == "1.000"
    assert len(result.stdout.splitlines()) >= 5


def test_tracing_benchmark_covers_the_corpus():
    sys.path.insert(0, str(BENCHMARKS.parent / "tests"))
    from corpus import CASES

    result = subprocess.run([sys.executable, str(BENCHMARKS / "tracing.py"), "--rounds", "1", "--calls", "1"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    for case in CASES:
        assert case.name in result.stdout
