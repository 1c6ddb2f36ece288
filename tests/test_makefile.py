"""The Makefile's choice of interpreter for .venv (`make which-python`): the first candidate that is
Python 3.11 or newer with venv, python3 when none is, and PY when the user gives it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: the user's own PY, PY_CANDIDATES or make flags would decide instead of the Makefile
_ENV = {k: v for k, v in os.environ.items() if k not in ("PY", "PY_CANDIDATES", "MAKEFLAGS", "MFLAGS")}

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def which_python(*args: str) -> str:
    out = subprocess.run(["make", "-s", "--no-print-directory", "which-python", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=60, env=_ENV)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _wrapped(path: Path, prelude: str) -> str:
    """A real interpreter that runs ``prelude`` before the code the Makefile gives it with -c."""
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "{prelude}\n$2"\n')
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def interpreters(tmp_path: Path) -> dict[str, str]:
    good = tmp_path / "python3.11"
    good.symlink_to(sys.executable)  # the suite's own: 3.11 or newer, with venv
    return {
        "old": _wrapped(tmp_path / "python3.10", "import sys; sys.version_info = (3, 10, 0)"),
        "no_venv": _wrapped(tmp_path / "python3.12", "import sys; sys.modules['ensurepip'] = None"),
        "good": str(good),
        "missing": str(tmp_path / "nothing-here"),
    }


def test_the_first_candidate_that_fits_is_chosen(interpreters):
    cands = (f"PY_CANDIDATES={interpreters['missing']} {interpreters['old']} {interpreters['no_venv']} "
             f"{interpreters['good']}")
    assert which_python(cands) == interpreters["good"]


def test_no_candidate_fits_falls_back_to_python3(interpreters):
    cands = f"PY_CANDIDATES={interpreters['missing']} {interpreters['old']} {interpreters['no_venv']}"
    assert which_python(cands) == "python3"


def test_py_given_by_the_user_wins(interpreters):
    assert which_python("PY=/opt/my/python3", f"PY_CANDIDATES={interpreters['good']}") == "/opt/my/python3"
