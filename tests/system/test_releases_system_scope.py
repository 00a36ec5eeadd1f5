"""Releases in the system scope, under a real PID-1 systemd: each version installed
into /var/lib/atlas/releases/<version>/ with the reconciler's own Python (Atlas in
/opt/atlas on Debian's /usr/bin/python3) and run by its DynamicUser service."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.systemsite import ENV_FILE, SystemSite
from tests.support.wheels import add_atlas_wheel

pytestmark = [pytest.mark.systemd, pytest.mark.slow, pytest.mark.timeout(900)]

NO_SELF = ("enabled: true", "enabled: false")
API = "  component: api\n  version: {}\n"
HEALTHZ = "http://127.0.0.1:8080/healthz"


@pytest.fixture(scope="module")
def release_wheels(wheelhouse: Path, pid1_share: Path) -> str:
    """The session's wheelhouse plus atlas 0.2.0, where the container sees it."""
    dest = pid1_share / "release-wheels"
    shutil.copytree(wheelhouse, dest, dirs_exist_ok=True)
    add_atlas_wheel(dest, "0.2.0")
    return "/srv/share/release-wheels"


def api_version(site: SystemSite) -> str:
    status, body = site.get(HEALTHZ)
    assert status == 200, body
    return str(json.loads(body)["version"])


def test_the_api_moves_between_releases_as_a_dynamic_user(
    system_site: SystemSite, release_wheels: str
) -> None:
    site = system_site
    site.change(ENV_FILE, *NO_SELF)
    site.change(ENV_FILE, "  logLevel: info\n",
                f"  logLevel: info\n  releases: {{source: {release_wheels}}}\n")  # fmt: skip
    done = site.reconcile()
    assert done.returncode == 0, done
    assert api_version(site) == "0.1.0"
    site.change("base/deployments.yaml", API.format("0.1.0"), API.format("0.2.0"))
    done = site.reconcile()
    assert done.returncode == 0, (done, site.host.journal("atlas-api.service"))
    assert api_version(site) == "0.2.0"
    pid = site.pid("atlas-api.service")
    assert site.uid_of(pid) != 0, "the api runs as its dynamic user"
    cmdline = site.host.run("cat", f"/proc/{pid}/cmdline").stdout.replace("\0", " ")
    assert cmdline.startswith("/var/lib/atlas/releases/0.2.0/bin/python -m atlas api"), cmdline
    modes = site.host.sh("stat -c '%a %U' /var/lib/atlas/releases /var/lib/atlas/releases/0.2.0")
    assert modes.split() == ["755", "root", "755", "root"], modes
    site.change("base/deployments.yaml", API.format("0.2.0"), API.format("0.1.0"))
    done = site.reconcile()
    assert done.returncode == 0, done
    assert api_version(site) == "0.1.0"
