"""Releases under a real systemd user manager: the api upgraded 0.1.0 → 0.2.0 and back,
each version running its own installed release and saying so in /healthz; a version
that cannot be installed fails the rollout with the running api untouched."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from atlas.usermanager import PrivateManager
from tests.support.sites import Site
from tests.support.wheels import add_atlas_wheel, build_wheelhouse

pytestmark = [pytest.mark.systemd, pytest.mark.slow]
API = "  component: api\n  version: {}\n"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = build_wheelhouse(tmp_path_factory.mktemp("release-wheels"))
    add_atlas_wheel(dest, "0.2.0")
    return dest


@pytest.fixture
def site(systemd_user: PrivateManager, wheels: Path) -> Site:
    site = Site(systemd_user, systemd_user.base / "repos")
    site.change("environments/development/environment.yaml", "  logLevel: debug\n",
                f"  logLevel: debug\n  releases: {{source: {wheels}}}\n")  # fmt: skip
    return site


def healthz_version(site: Site, port: int) -> str:
    reply = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["version"])


def reconciled(site: Site) -> str:
    done = site.reconcile()
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def command_line(site: Site, unit: str) -> str:
    return Path(f"/proc/{site.pid(unit)}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_the_api_is_upgraded_and_downgraded_between_releases(site: Site) -> None:
    releases = site.manager.state_home / "atlas/releases"
    out = reconciled(site)
    assert "installing atlas 0.1.0" in out, out
    assert healthz_version(site, site.api) == "0.1.0"
    assert f"{releases}/0.1.0/bin/python -m atlas api" in command_line(site, "atlas-api.service")

    core_pid = site.pid("atlas-core.service")
    site.change("base/deployments.yaml", API.format("0.1.0"), API.format("0.2.0"))
    out = reconciled(site)
    assert "installing atlas 0.2.0" in out, out
    assert healthz_version(site, site.api) == "0.2.0"
    assert f"{releases}/0.2.0/bin/python" in command_line(site, "atlas-api.service")
    assert healthz_version(site, site.core) == "0.1.0"
    assert site.pid("atlas-core.service") == core_pid, "core's version did not change"

    site.change("base/deployments.yaml", API.format("0.2.0"), API.format("0.1.0"))
    out = reconciled(site)
    assert "installing" not in out, "0.1.0 was kept for rollback: nothing to install"
    assert healthz_version(site, site.api) == "0.1.0"
    assert sorted(p.name for p in releases.iterdir()) == ["0.1.0", "0.2.0"]


def test_a_version_that_cannot_be_installed_leaves_the_api_running(site: Site) -> None:
    reconciled(site)
    api_pid = site.pid("atlas-api.service")
    site.change("base/deployments.yaml", API.format("0.1.0"), API.format("9.9.9"))
    done = site.reconcile()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "release 9.9.9 from" in done.stdout + done.stderr
    assert site.pid("atlas-api.service") == api_pid
    assert site.state("atlas-api.service") == "active/running"
    assert healthz_version(site, site.api) == "0.1.0"
