"""``atlas doctor`` on a host converged by a real systemd user manager: the manager
answers with its version, the units run and hold their own ports, the database the
worker made is sound; then a unit is stopped by hand, another process takes its port
and its config is edited, and doctor names all three and exits 1."""

from __future__ import annotations

import json
import socket

import pytest

from atlas.usermanager import PrivateManager
from tests.support.sites import Site

pytestmark = [pytest.mark.systemd, pytest.mark.slow]


@pytest.fixture
def site(systemd_user: PrivateManager) -> Site:
    return Site(systemd_user, systemd_user.base / "repos")


def doctor(site: Site) -> tuple[int, dict[str, dict]]:
    done = site.atlas("doctor", "--scope", "user", "-o", "json")
    assert "Traceback" not in done.stderr, done.stderr
    doc = json.loads(done.stdout)
    return done.returncode, {f["check"]: f for f in doc["findings"]}


def test_doctor_on_a_converged_host_then_a_broken_one(site: Site) -> None:
    done = site.reconcile()
    assert done.returncode == 0, done.stdout + done.stderr
    _, found = doctor(site)
    for check in ("manager", "inventory", "units", "keys", "repository", "reconciler", "ports"):
        assert found[check]["verdict"] == "ok", found[check]
    assert " version " in found["manager"]["message"]

    site.manager.systemctl("stop", "atlas-api.service")
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", site.api))
    squatter.listen()
    try:
        core = site.config_dir / "core.json"
        core.write_text(core.read_text().replace('"intervalSeconds"', '"intervalSeconds" ', 1))
        code, found = doctor(site)
    finally:
        squatter.close()
    assert code == 1
    assert "atlas-api.service" in found["units"]["message"]
    assert found["ports"]["verdict"] == "problem"
    assert f"port {site.api} of atlas-api.service is held by" in found["ports"]["details"][0]
    assert found["reconciler"]["message"] == "sync status OutOfSync"  # drift left uncorrected
    assert found["inventory"]["verdict"] == "problem"
    assert any("core.json" in d for d in found["inventory"]["details"])
