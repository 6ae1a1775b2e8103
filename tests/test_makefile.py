"""`make test` says what it installs before installing it, and runs without root or apt (browser tests skipped)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def make(tmp_path, *args):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    (venv / "bin" / "python").touch()  # the venv exists: only the browser rule runs
    return subprocess.run(
        ["make", "-s", "-C", str(ROOT), f"VENV={venv}", f"CHROMIUM={tmp_path / 'chromium'}", *args, f"{venv}/.browser"],
        capture_output=True,
        text=True,
        timeout=60,
    ), venv


def test_without_apt_the_browser_tests_are_skipped_with_one_line(tmp_path):
    result, venv = make(tmp_path, f"APT_GET={tmp_path / 'no-apt-get'}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"make test: no Chromium at {tmp_path / 'chromium'} and no root apt-get to install it: "
        "the studio's browser tests will be skipped"
    ]
    assert not (venv / ".browser").exists()  # asked again next time, not silently stamped


def test_browser_no_never_installs(tmp_path):
    apt = tmp_path / "apt-get"
    apt.write_text("#!/bin/sh\necho CALLED\n")
    apt.chmod(0o755)
    result, _ = make(tmp_path, f"APT_GET={apt}", "BROWSER=no")
    assert result.returncode == 0 and "CALLED" not in result.stdout
    assert len(result.stdout.splitlines()) == 1 and "will be skipped" in result.stdout


@pytest.mark.skipif(os.geteuid() != 0, reason="the apt path runs only as root")
def test_apt_says_what_it_installs_before_installing(tmp_path):
    apt = tmp_path / "apt-get"  # records its calls; `install` makes the browser
    apt.write_text(
        f'#!/bin/sh\necho "APT $1"\n[ "$1" = install ] && printf \'#!/bin/sh\\n\' > {tmp_path}/chromium '
        f"&& chmod +x {tmp_path}/chromium\nexit 0\n"
    )
    apt.chmod(0o755)
    result, venv = make(tmp_path, f"APT_GET={apt}")
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    first_apt = lines.index("APT update")
    told = " ".join(lines[:first_apt])
    assert "installing Debian's chromium" in told and "130" in told and "BROWSER=no" in told
    assert (venv / ".browser").exists()


def test_pip_installs_are_announced_with_what_they_bring():
    result = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "VENV=/nonexistent-venv", "test"], capture_output=True, text=True, timeout=60
    )
    lines = result.stdout.splitlines()
    pip = next(i for i, line in enumerate(lines) if "pip install" in line and "-e" in line)
    said = next(i for i, line in enumerate(lines) if line.startswith("echo") and "torchbend[dev]" in line)
    assert said < pip and "pytest" in lines[said] and "constraints.txt" in lines[said]
