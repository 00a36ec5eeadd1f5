"""Atlas as a production host gets it: a wheelhouse (the atlas wheel and every
dependency's) built from this checkout, and venvs installed from it alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.examples import PROJECT


def build_wheelhouse(dest: Path) -> Path:
    """``pip wheel`` this checkout with its dependencies into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
         "--wheel-dir", str(dest), str(PROJECT)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    shutil.rmtree(PROJECT / "build", ignore_errors=True)
    return dest


def install_from_wheelhouse(python: str, wheelhouse: Path, venv: Path) -> Path:
    """A venv made with ``python`` holding Atlas from ``wheelhouse`` only; its ``atlas``."""
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [str(venv / "bin/pip"), "install", "--quiet", "--no-index", "--disable-pip-version-check",
         "--find-links", str(wheelhouse), "atlas"],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return venv / "bin/atlas"
