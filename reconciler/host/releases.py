"""The releases seam: installed Atlas releases, one immutable venv per version.

A release lives in ``<state>/releases/<version>/``: a venv of its own with that
version's ``atlas`` installed from the Environment's ``spec.releases.source`` only (a
folder of wheels, a ``file://`` URL, or a package index URL), and ``release.json``
(version, the atlas wheel's sha256, when it was installed) written last, so a folder
without it is a half install and never taken as installed.

``ReleaseInstaller`` is the protocol; ``PipInstaller`` builds a release in a temp
folder beside the others (``python -m venv``; ``uv pip install`` when ``uv`` is on
PATH, ``pip`` otherwise), checks the wheel's sha256 when one is given, makes it
readable by every user (DynamicUser services), writes the marker and renames the
folder into place. Every failure is a ``ReleaseError`` naming the version, the
source and what to do; nothing half-done is left where a unit could use it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler.errors import PermanentError

MARKER = "release.json"
TEMP_PREFIX = ".installing-"
# a whole venv from a slow index, all steps together; well inside the ten minutes a
# --watch daemon's watchdog allows one cycle beyond its interval
INSTALL_TIMEOUT_S = 480.0


class ReleaseError(PermanentError):
    """A release cannot be installed: missing from its source, wrong checksum, pip failed."""


@dataclass(frozen=True)
class ReleaseRequest:
    """A release a Deployment asks for: its version, where it comes from, its checksum."""

    version: str
    source: str
    sha256: str | None = None


@dataclass(frozen=True)
class InstalledRelease:
    version: str
    wheel_sha256: str
    installed_at: float  # Unix time the marker was written


class ReleaseInstaller(Protocol):
    def install(self, request: ReleaseRequest) -> InstalledRelease: ...
    def remove(self, version: str) -> None: ...


def read_installed(releases_dir: Path) -> dict[str, InstalledRelease]:
    """The releases under ``releases_dir`` with a readable marker (others: half installs)."""
    found: dict[str, InstalledRelease] = {}
    if not releases_dir.is_dir():
        return found
    for folder in sorted(releases_dir.iterdir()):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            doc = json.loads((folder / MARKER).read_text(encoding="utf-8"))
            release = InstalledRelease(
                str(doc["version"]), str(doc["wheel_sha256"]), float(doc["installed_at"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if release.version == folder.name:
            found[release.version] = release
    return found


def _is_url(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def shown(source: str) -> str:
    """``source`` fit for a message: a URL's user and password left out."""
    scheme, sep, rest = source.partition("://")
    if not sep:
        return source
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"


def _folder(source: str) -> str:
    return source.removeprefix("file://")


def _clean_env() -> dict[str, str]:
    """pip and uv from the release source only: no pip.conf, no PIP_*/UV_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", UV_NO_CONFIG="1")
    return env


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _readable_by_all(root: Path) -> None:
    """Folders 0755, files readable (and executable where the owner may run them)."""
    for here, _dirs, files in os.walk(root):
        os.chmod(here, 0o755)  # noqa: S103 - DynamicUser services run this venv
        for name in files:
            path = Path(here) / name
            if path.is_symlink():
                continue
            mode = stat.S_IMODE(path.lstat().st_mode)
            path.chmod(mode | 0o444 | (0o111 if mode & 0o100 else 0))


class PipInstaller:
    """Installs releases into ``releases_dir`` with ``python`` (the reconciler's own)."""

    def __init__(
        self,
        releases_dir: Path,
        python: str,
        log: Callable[[str], None] = lambda message: None,
        uv: str | None = None,
    ) -> None:
        self.dir = releases_dir
        self.python = python
        self.log = log
        self.uv = uv if uv is not None else shutil.which("uv")
        self._deadline = 0.0

    def install(self, request: ReleaseRequest) -> InstalledRelease:
        have = read_installed(self.dir).get(request.version)
        if have is not None:
            if request.sha256 and request.sha256 != have.wheel_sha256:
                raise ReleaseError(
                    f"release {request.version} is installed with an atlas wheel of sha256 "
                    f"{have.wheel_sha256}, not {request.sha256}: releases are immutable; "
                    f"publish the new build as a new version"
                )
            return have
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        for stray in self.dir.glob(f"{TEMP_PREFIX}*"):
            shutil.rmtree(stray, ignore_errors=True)
        started = time.monotonic()
        self._deadline = started + INSTALL_TIMEOUT_S
        work = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{request.version}-", dir=self.dir))
        try:
            release = self._build(request, work)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        final = self.dir / request.version
        if final.exists():  # a folder without a marker: a half install of someone else
            shutil.rmtree(final)
        os.rename(work / "venv", final)
        shutil.rmtree(work, ignore_errors=True)
        took = time.monotonic() - started
        self.log(f"release {request.version}: installed in {final} ({took:.1f}s)")
        return release

    def remove(self, version: str) -> None:
        target = self.dir / version
        if not target.is_dir():
            return
        # out of the way in one rename, so no unit ever sees half a release
        doomed = self.dir / f"{TEMP_PREFIX}removing-{version}"
        try:
            os.rename(target, doomed)
        except OSError as exc:  # kept: pruning is upkeep, never a failed rollout
            self.log(f"release {version}: could not remove {target}: {exc.strerror or exc}")
            return
        shutil.rmtree(doomed, ignore_errors=True)
        self.log(f"release {version}: removed (older than the ones kept, used by no unit)")

    # ---------------------------------------------------------------- the steps

    def _build(self, request: ReleaseRequest, work: Path) -> InstalledRelease:
        where = f"release {request.version} from {shown(request.source)}"
        venv, wheels = work / "venv", work / "wheels"
        self.log(f"{where}: fetching the atlas wheel")
        wheel = self._download(request, wheels)
        digest = sha256_of(wheel)
        if request.sha256 and digest != request.sha256:
            raise ReleaseError(
                f"{where}: the atlas wheel {wheel.name} has sha256 {digest}, but the "
                f"Deployment expects {request.sha256}: check the source, or the sha256 in "
                "the Deployment"
            )
        self.log(f"{where}: creating its venv")
        self._run(where, [self.python, "-m", "venv", str(venv)], "creating the venv")
        self.log(f"{where}: installing atlas {request.version} and its dependencies")
        self._run(where, self._install_argv(request, venv, wheel), "installing")
        _readable_by_all(venv)
        release = InstalledRelease(request.version, digest, time.time())
        marker = {
            "version": release.version,
            "wheel_sha256": release.wheel_sha256,
            "installed_at": release.installed_at,
            "source": shown(request.source),
            "wheel": wheel.name,
        }
        (venv / MARKER).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
        (venv / MARKER).chmod(0o644)
        return release

    def _source_args(self, source: str) -> list[str]:
        if _is_url(source):
            return ["--index-url", source]
        folder = _folder(source)
        if not Path(folder).is_dir():
            raise ReleaseError(
                f"spec.releases.source {shown(source)}: no such folder of wheels on this host"
            )
        return ["--no-index", "--find-links", folder]

    def _download(self, request: ReleaseRequest, dest: Path) -> Path:
        where = f"release {request.version} from {shown(request.source)}"
        argv = [self.python, "-m", "pip", "download", "--quiet", "--no-cache-dir", "--no-deps",
                "--only-binary=:all:",
                "--dest", str(dest), *self._source_args(request.source),
                f"atlas=={request.version}"]  # fmt: skip
        self._run(where, argv, "finding the atlas wheel")
        found = sorted(dest.glob("atlas-*.whl"))
        if len(found) != 1:
            raise ReleaseError(f"{where}: expected one atlas wheel, found {len(found)}")
        return found[0]

    def _install_argv(self, request: ReleaseRequest, venv: Path, wheel: Path) -> list[str]:
        source = self._source_args(request.source)
        if self.uv:
            return [self.uv, "pip", "install", "--quiet", "--no-cache",
                    "--python", str(venv / "bin/python"),
                    *source, str(wheel)]  # fmt: skip
        return [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--no-cache-dir",
                *source, str(wheel)]  # fmt: skip

    def _run(self, where: str, argv: list[str], doing: str) -> None:
        try:
            done = subprocess.run(
                argv,
                env=_clean_env(),
                capture_output=True,
                text=True,
                timeout=max(1.0, self._deadline - time.monotonic()),
                check=False,
            )
        except OSError as exc:
            raise ReleaseError(f"{where}: {doing} failed: {exc.strerror or exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise ReleaseError(
                f"{where}: {doing} did not finish within the {INSTALL_TIMEOUT_S:.0f}s an install "
                "may take"
            ) from exc
        if done.returncode != 0:
            tail = _last_lines(done.stderr or done.stdout)
            for arg in argv:  # an index URL's credentials never reach a message
                if "://" in arg:
                    tail = tail.replace(arg, shown(arg))
            raise ReleaseError(f"{where}: {doing} failed (exit {done.returncode}): {tail}")


def _last_lines(text: str, n: int = 4) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-n:]) or "no output"


def in_use(unit_texts: Mapping[str, str], releases_dir: str) -> set[str]:
    """The versions whose ``<releases_dir>/<version>/bin/`` a unit file's text names."""
    prefix = releases_dir.rstrip("/") + "/"
    used: set[str] = set()
    for text in unit_texts.values():
        start = text.find(prefix)
        while start != -1:
            rest = text[start + len(prefix) :]
            version, sep, _ = rest.partition("/bin/")
            if sep and version and "/" not in version and " " not in version:
                used.add(version)
            start = text.find(prefix, start + 1)
    return used
