"""The benchmarks run end to end and print their ratio tables (speed itself is not asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(
    "script, baseline",
    [
        ("overhead.py", "plain decode"),
        ("activation_io.py", "plain decode"),
        ("export.py", "plain decode"),
        ("torchscript.py", "plain decode"),
        ("audio.py --small-only", "plain decode"),
    ],
)
def test_ratio_benchmarks_print_every_variant_against_the_baseline(script, baseline):
    script, *flags = script.split()
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--rounds", "1", "--calls", "1", *flags],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith(baseline)]
    assert rows and rows[0].split()[-1] == "1.000"
    assert len(result.stdout.splitlines()) >= 5


def test_tracing_benchmark_covers_the_corpus():
    sys.path.insert(0, str(BENCHMARKS.parent / "tests"))
    from corpus import CASES

    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "tracing.py"), "--rounds", "1", "--calls", "1", "--small-only"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    for case in CASES:
        assert case.name in result.stdout


def test_concurrency_benchmark_prints_a_row_per_thread_count():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "concurrency.py"), "--rounds", "1", "--calls", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.strip()[:1].isdigit()]
    assert [row[0] for row in rows] == ["1", "2", "4"] and all(len(row) == 6 for row in rows)


def test_studio_benchmark_prints_render_ratio_and_osc_rates():
    """The page latencies need Chromium and a quiet machine: the browser test covers the page."""
    pytest.importorskip("panel")
    pytest.importorskip("pythonosc")
    result = subprocess.run(
        [
            sys.executable,
            str(BENCHMARKS / "studio.py"),
            "--no-browser",
            "--seconds",
            "0.1",
            "--rounds",
            "1",
            "--calls",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert [line.split()[-1] for line in out.splitlines() if line.startswith("plain decode")] == ["1.000"]
    assert [line.split()[-1] for line in out.splitlines() if " Hz " in line or "burst" in line] == ["True"] * 4


def test_toolbox_benchmark_prints_each_transform_and_the_sweep():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "toolbox.py"), "--rounds", "1", "--calls", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for row in ("plain decode", "Rotate(30)", "Blur(1)", "Select(Blur(2)", "sweep of 64 angles"):
        assert row in result.stdout


def test_sweep_benchmark_prints_a_speed_up_per_bend_kind():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "sweep.py"), "--rounds", "1", "--no-ray"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.split()[:1] in (["weight"], ["activation"])]
    assert sorted((r[0], r[1]) for r in rows) == [
        ("activation", "1"),
        ("activation", "16"),
        ("weight", "1"),
        ("weight", "16"),
    ]
    assert all(float(r[-1]) > 0 for r in rows)


def test_optimize_benchmark_prints_step_ratios_and_memory():
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "optimize.py"), "--rounds", "1", "--calls", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.rsplit(None, 3) for line in result.stdout.splitlines() if line.startswith(("plain", "optimize"))]
    assert [row[0].strip() for row in rows][0] == "plain forward+backward" and rows[0][2] == "1.000"
    assert len(rows) == 5 and all(float(row[3]) > 0 for row in rows)


def test_corpus_benchmark_prints_a_row_per_model():
    pytest.importorskip("transformers")
    pytest.importorskip("diffusers")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "corpus.py"), "--rounds", "1", "--calls", "1", "--only", "Bert"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines() if line.startswith("| ") and "Bert" in line]
    assert [row[0].strip() for row in rows] == ["BertModel", "DistilBertModel"]
    assert all(row[-2].strip() == "ok" and row[-1].strip() == "ok" and float(row[3]) > 0 for row in rows)
