"""Releases installed for real: this project's wheels at 0.1.0 and 0.2.0 in a temporary
wheel folder, installed offline (pip --no-index) into their own venvs; a bad checksum
or a missing version fails before anything stops."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from reconciler import pipeline
from reconciler.host.releases import (
    MARKER,
    PipInstaller,
    ReleaseError,
    ReleaseRequest,
    read_installed,
    sha256_of,
)
from reconciler.loop import Options, Reconciler
from reconciler.outcomes import Outcome
from tests.support.git import commit, example_repo
from tests.support.hosts import FolderHost
from tests.support.wheels import add_atlas_wheel, build_wheelhouse

pytestmark = pytest.mark.slow
UNIT = "home/atlas/.config/systemd/user/atlas-api.service"
WRONG = "ab" * 32  # a well-formed sha256 of no wheel here


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """atlas 0.1.0 with every dependency, and atlas 0.2.0."""
    dest = build_wheelhouse(tmp_path_factory.mktemp("wheels"))
    add_atlas_wheel(dest, "0.2.0")
    return dest


def wheel(wheels: Path, version: str) -> Path:
    (found,) = wheels.glob(f"atlas-{version}-*.whl")
    return found


def reported_version(release: Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(release / "bin/python"), "-m", "atlas", "--version"],
        cwd=cwd, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def test_a_release_is_installed_once_into_its_own_venv(wheels: Path, tmp_path: Path) -> None:
    said: list[str] = []
    installer = PipInstaller(tmp_path / "releases", sys.executable, said.append, uv="")
    digest = sha256_of(wheel(wheels, "0.2.0"))
    first = installer.install(ReleaseRequest("0.2.0", f"file://{wheels}", digest))
    release = tmp_path / "releases/0.2.0"
    assert reported_version(release, tmp_path) == "atlas 0.2.0"
    assert read_installed(tmp_path / "releases") == {"0.2.0": first}
    assert first.wheel_sha256 == digest and (release / MARKER).stat().st_mode & 0o777 == 0o644
    assert release.stat().st_mode & 0o777 == 0o755, "DynamicUser services must read it"
    assert any("installing atlas 0.2.0" in line for line in said), said
    again = installer.install(ReleaseRequest("0.2.0", str(wheels)))
    assert again == first, "installed once, never again"
    assert sorted(p.name for p in (tmp_path / "releases").iterdir()) == ["0.2.0"]


@pytest.mark.parametrize(
    ("version", "digest", "message"),
    [
        ("0.1.0", "0" * 64, "the atlas wheel atlas-0.1.0-py3-none-any.whl has sha256 "),
        ("9.9.9", None, "finding the atlas wheel failed (exit 1): ERROR: Could not find"),
    ],
    ids=["bad-checksum", "missing-version"],
)
def test_a_release_that_cannot_be_installed_leaves_nothing(
    wheels: Path, tmp_path: Path, version: str, digest: str | None, message: str
) -> None:
    installer = PipInstaller(tmp_path / "releases", sys.executable, uv="")
    with pytest.raises(ReleaseError) as caught:
        installer.install(ReleaseRequest(version, str(wheels), digest))
    assert str(caught.value).startswith(f"release {version} from {wheels}: ")
    assert message in str(caught.value)
    assert list((tmp_path / "releases").iterdir()) == [], "no half install, no temp folder"


def test_a_missing_wheel_folder_is_named(tmp_path: Path) -> None:
    installer = PipInstaller(tmp_path / "releases", sys.executable, uv="")
    with pytest.raises(ReleaseError, match="no such folder of wheels on this host"):
        installer.install(ReleaseRequest("0.1.0", str(tmp_path / "nowhere")))


def test_upgrade_with_a_bad_checksum_fails_before_anything_stops(
    wheels: Path, tmp_path: Path
) -> None:
    repo = example_repo(tmp_path / "repo")
    commit(repo, "environments/development/environment.yaml", "  logLevel: debug\n",
           f"  logLevel: debug\n  releases: {{source: {wheels}}}\n")  # fmt: skip
    folder = FolderHost(tmp_path / "root")
    releases = folder.layout.on_disk(folder.layout.releases_dir)
    logs: list[str] = []
    rec = Reconciler(
        pipeline.Target(str(repo), "main", ".", "development"),
        replace(folder.host, releases=PipInstaller(releases, sys.executable, uv="")),
        folder.store,
        lambda env: None,
        log=lambda level, message: logs.append(message),
        options=Options(stable_for=0.1),
    )
    assert rec.cycle().outcome is Outcome.APPLIED
    assert sorted(read_installed(releases)) == ["0.1.0"]
    unit = folder.root / UNIT
    assert f"{releases}/0.1.0/bin/python -m atlas api".replace(str(folder.root), "") in (
        unit.read_text()
    )
    running = dict(folder.runtime.units)
    folder.runtime.calls.clear()

    old = "  component: api\n  version: 0.1.0\n"
    commit(repo, "base/deployments.yaml", old,
           f"  component: api\n  version: 0.2.0\n  sha256: {WRONG}\n")  # fmt: skip
    failed = rec.cycle()
    assert failed.outcome is Outcome.ROLLED_BACK, failed.reason
    assert "release 0.2.0 from" in failed.reason and "sha256" in failed.reason
    assert folder.runtime.calls == [], "nothing stopped, restarted or written"
    assert folder.runtime.units == running, "every unit as it was"
    assert "/0.1.0/bin/python" in unit.read_text()
    assert sorted(read_installed(releases)) == ["0.1.0"]

    digest = sha256_of(wheel(wheels, "0.2.0"))
    commit(repo, "base/deployments.yaml", f"sha256: {WRONG}", f"sha256: {digest}")
    upgraded = rec.cycle()
    assert upgraded.outcome is Outcome.APPLIED, upgraded.reason
    assert ("restart", "atlas-api.service") in folder.runtime.calls
    assert "/0.2.0/bin/python -m atlas api" in unit.read_text()
    assert reported_version(releases / "0.2.0", tmp_path) == "atlas 0.2.0"
