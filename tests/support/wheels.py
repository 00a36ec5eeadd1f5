"""Atlas as a production host gets it: a wheelhouse (the atlas wheel and every
dependency's) built from this checkout; ``Pid1Host.install_atlas`` installs from it.
``add_atlas_wheel`` adds this checkout's atlas wheel at another version (built from a
copy whose pyproject.toml says that version), for upgrade and downgrade tests."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tests.support.examples import PROJECT

# what a wheel is built from (setup.py maps the data folders into seams/_data)
SOURCES = (
    "atlas",
    "reconciler",
    "seams",
    "schemas",
    "systemd",
    "templates",
    "manifests",
    "monitoring",
)
SOURCE_FILES = ("pyproject.toml", "setup.py", "README.md")


def _pip_wheel(dest: Path, project: Path, *extra: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
         "--wheel-dir", str(dest), *extra, str(project)],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def build_wheelhouse(dest: Path) -> Path:
    """``pip wheel`` this checkout with its dependencies into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    _pip_wheel(dest, PROJECT)
    shutil.rmtree(PROJECT / "build", ignore_errors=True)
    return dest


def add_atlas_wheel(dest: Path, version: str, patch: Callable[[Path], None] | None = None) -> Path:
    """This checkout's atlas wheel at ``version`` into ``dest`` (no dependencies); its
    path. The installed release reports ``version`` (``seams.build.version``).
    ``patch`` may change the copied sources first (a bad release for a test)."""
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="atlas-src-") as tmp:
        src = Path(tmp) / "atlas"
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
        for name in SOURCES:
            shutil.copytree(PROJECT / name, src / name, ignore=ignore)
        for name in SOURCE_FILES:
            shutil.copy(PROJECT / name, src / name)
        pyproject = src / "pyproject.toml"
        text, n = re.subn(
            r'(?m)^version = "[^"]*"$', f'version = "{version}"', pyproject.read_text()
        )
        assert n == 1, "pyproject.toml has one version line"
        pyproject.write_text(text)
        if patch is not None:
            patch(src)
        _pip_wheel(dest, src, "--no-deps")
    (wheel,) = dest.glob(f"atlas-{version}-*.whl")
    return wheel
