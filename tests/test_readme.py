"""Every ```python block of the README runs as written, top to bottom, in one namespace.

A block preceded by ``<!-- readme-test: skip ... -->`` is left out (kept for blocks that need
hardware or models the tests do not have).
"""

import linecache
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!--\s*readme-test:\s*skip[^>]*-->\s*)?```python\n(.*?)```", re.DOTALL)


def readme_blocks(text: str) -> list[tuple[bool, str]]:
    """(skipped, code) for each python block of `text`, in order."""
    return [(bool(m.group(1)), m.group(2)) for m in BLOCK.finditer(text)]


def test_blocks_are_found_and_skips_are_marked():
    blocks = readme_blocks("a\n```python\nx = 1\n```\n<!-- readme-test: skip (gpu) -->\n```python\ny\n```\n")
    assert blocks == [(False, "x = 1\n"), (True, "y\n")]


@pytest.mark.filterwarnings("ignore")
def test_readme_code_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # blocks may write files
    blocks = readme_blocks(README.read_text(encoding="utf-8"))
    run = [code for skipped, code in blocks if not skipped]
    assert len(run) >= 3 and len(run) > 2 * (len(blocks) - len(run))  # skips stay rare
    namespace: dict = {"__name__": "readme"}
    for i, code in enumerate(run):
        try:
            filename = f"<README.md block {i + 1}>"
            linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)  # for TorchScript
            exec(compile(code, filename, "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"README block {i + 1} failed: {type(error).__name__}: {error}\n{code}") from error
