"""Atlas as a production host gets it: a wheelhouse (the atlas wheel and every
dependency's) built from this checkout; ``Pid1Host.install_atlas`` installs from it."""

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
