"""Core with ``replicas: 2`` under a real systemd manager: the reconciler's template
units atlas-core@1 and @2 run side by side and share the sources through leases;
a replica SIGKILLed by hand is restarted by systemd and nothing is left leased."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest

from atlas.usermanager import PrivateManager
from tests.support.git import git
from tests.support.net import free_port_run
from tests.support.sites import Site

pytestmark = [pytest.mark.systemd, pytest.mark.slow]

UNITS = ("atlas-core@1.service", "atlas-core@2.service")


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_two_core_replicas_share_the_sources(systemd_user: PrivateManager) -> None:
    site = Site(systemd_user, systemd_user.base / "repos")
    env = "environments/development/environment.yaml"
    site.change(env, f"metricsPort: {site.core}", f"metricsPort: {free_port_run(2)}")
    path = site.work / "base/deployments.yaml"
    docs = path.read_text().split("---\n")
    path.write_text(
        "---\n".join(
            d.replace("replicas: 1", "replicas: 2") if "name: core" in d else d for d in docs
        )
    )
    git(site.work, "commit", "-qam", "two core replicas")
    site.push()
    done = site.reconcile()
    assert done.returncode == 0, done.stdout + done.stderr
    for unit in UNITS:
        assert site.state(unit) == "active/running", unit
    config = json.loads((site.config_dir / "core.json").read_text())
    db = Path(config["database"]["path"])
    names = {s["name"] for s in config["sources"] if s["enabled"]}
    deadline = time.monotonic() + 60
    while True:
        fetched = {
            str(n)
            for (n,) in rows(db, "SELECT name FROM sources WHERE last_success_at IS NOT NULL")
        }
        if fetched >= names:
            break
        assert time.monotonic() < deadline, f"never fetched: {names - fetched}"
        time.sleep(0.5)
    pid = site.pid(UNITS[0])
    systemd_user.systemctl("kill", "--signal=SIGKILL", UNITS[0])
    deadline = time.monotonic() + 30
    while site.pid(UNITS[0]) in (0, pid) or site.state(UNITS[0]) != "active/running":
        assert time.monotonic() < deadline, "systemd did not restart the killed replica"
        time.sleep(0.2)
    assert site.state(UNITS[1]) == "active/running"
    # every source was stored, and storing releases its lease
    assert rows(db, "SELECT source, holder FROM source_leases WHERE holder IS NOT NULL") == []
    report = site.status()
    assert report["sync"] == "Synced", report
