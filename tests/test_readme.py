"""Every ```python block of the README runs as written, top to bottom, in one namespace; so does every block
of each page under docs/, each page in a namespace of its own.

A block preceded by ``<!-- readme-test: skip ... -->`` is left out (kept for blocks that need
hardware the tests do not have, such as a MIDI controller).
"""

import linecache
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"(<!--\s*readme-test:\s*skip[^>]*-->\s*)?```python\n(.*?)```", re.DOTALL)


def readme_blocks(text: str) -> list[tuple[bool, str]]:
    """(skipped, code) for each python block of `text`, in order."""
    return [(bool(m.group(1)), m.group(2)) for m in BLOCK.finditer(text)]


def run_blocks(path: Path) -> list[str]:
    """Run the blocks of `path` in one namespace; return the code of those run."""
    blocks = readme_blocks(path.read_text(encoding="utf-8"))
    run = [code for skipped, code in blocks if not skipped]
    namespace: dict = {"__name__": "readme"}
    for i, code in enumerate(run):
        try:
            filename = f"<{path.name} block {i + 1}>"
            linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)  # for TorchScript
            exec(compile(code, filename, "exec"), namespace)
        except Exception as error:
            failed = f"{path.name} block {i + 1} failed: {type(error).__name__}: {error}"
            raise AssertionError(f"{failed}\n{code}") from error
    return run


def test_blocks_are_found_and_skips_are_marked():
    blocks = readme_blocks("a\n```python\nx = 1\n```\n<!-- readme-test: skip (gpu) -->\n```python\ny\n```\n")
    assert blocks == [(False, "x = 1\n"), (True, "y\n")]


@pytest.mark.filterwarnings("ignore")
def test_readme_code_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks may write files
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    run = run_blocks(README)
    assert len(run) >= 3 and len(blocks) - len(run) <= 1  # only the MIDI controller's block is skipped
    assert (tmp_path / "quickstart.png").read_bytes()[:4] == b"\x89PNG"  # the quick start saves its picture


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_docs_pages_code_runs_top_to_bottom(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_blocks(page)


def test_the_readme_is_a_guide_whose_links_resolve():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 335  # a guide of about 300 lines; reference material lives in docs/
    assert text.startswith("# torchbend\n\n```\nmake demo")  # the two set-up commands first
    headings = re.findall(r"(?m)^## (.*)$", text)
    assert headings[:4] == ["Contents", "Install", "Quick start", "Command line"]
    assert "Coming from the reference torchbend" in headings
    for target in re.findall(r"\]\(((?:docs/)[^)#]+)\)", text):
        assert (ROOT / target).exists(), target
    for page in PAGES:
        assert "](../README.md)" in page.read_text(encoding="utf-8"), page.name  # each page leads back
    assert "on purpose" in (ROOT / "docs" / "coming-from-torchbend.md").read_text(encoding="utf-8")
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    for anchor in re.findall(r"\]\(#([^)]+)\)", text):
        assert anchor in anchors, anchor
