"""The examples run: the notebook (executed with nbclient) and the scripts."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_notebook_is_stored_with_its_pictures_and_runs_again(tmp_path):
    path = EXAMPLES / "01_bending_an_mnist_vae.ipynb"
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    stored = [o for cell in code for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(stored) == 8  # saved with its outputs, readable without running it
    plots = [line for cell in code for line in cell.source.splitlines() if "plot_image_activations(outs" in line]
    assert len(plots) == 8 and all("titles=" in line for line in plots)  # every row is titled
    text = "\n".join(cell.source for cell in notebook.cells)
    assert "bend_activation" not in text  # no keyword that does not exist
    assert "_filter_bended=True" in text and "after_bends=False" in text
    assert "load_audio_vae()" in notebook.cells[-1].source and "Audio" in notebook.cells[-1].source
    for cell in code:
        cell.outputs, cell.execution_count = [], None
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    images = [o for cell in code for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 8  # one picture per bending experiment, none twice
    errors = [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert errors == []


def run_example(script, *args):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_quickstart_bends_and_restores():
    out = run_example("quickstart.py")
    assert "the plain output is back: True" in out
    assert "keep=1.0:      mean |change| = 0.0000" in out


def test_samples_picture_is_written(tmp_path):
    run_example("mnist_vae_samples.py", str(tmp_path / "s.png"))
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_the_readme_picture_is_drawn_by_the_readme_quick_start(tmp_path):
    assert "wrote" in run_example("readme_picture.py", str(tmp_path))
    assert (tmp_path / "quickstart.png").read_bytes()[:4] == b"\x89PNG" and not (tmp_path / "glitch.json").exists()


def _numbers(line):
    return [
        float(word.rstrip(",;"))
        for word in line.replace("->", " ").split()
        if word.rstrip(",;").replace(".", "", 1).isdigit()
    ]


def test_learned_bold_digits_have_more_ink_than_plain_and_hand_bent():
    out = run_example("learn_bold_digits.py", "--steps", "15").splitlines()
    first, best = _numbers(out[0])[:2]
    ink = {line.split()[0]: _numbers(line)[0] for line in out[1:4]}
    assert best < first and ink["learned"] > ink["plain"] and ink["learned"] > ink["by"]


def test_a_learned_steering_vector_raises_the_chosen_tokens():
    pytest.importorskip("transformers")
    out = run_example("learn_steering_vector.py", "--steps", "15").splitlines()
    norm, first, best = _numbers(out[0])
    p_before, p_after = _numbers(out[1])[-2:]
    assert best < first and p_after > p_before and 0 < norm <= 8.5


def test_learned_audio_gains_bring_the_spectrum_closer_to_the_target():
    out = run_example("learn_audio_gains.py", "--steps", "8").splitlines()
    before, after = _numbers(out[0])[:2]
    assert after < before
