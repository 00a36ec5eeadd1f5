"""Folders that PrivateTmp= would hide from a unit are bound into its namespace.

With the config, state and repository folders under /tmp, every sandboxed unit used to
fail with 226/NAMESPACE (``ReadWritePaths=`` on a folder its private /tmp does not
have) and the run ended in "no healthy revision to roll back to". Here a real user
manager keeps all of them under /tmp and the whole platform, the reconciler's own
service included, converges and serves.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atlas.usermanager import PrivateManager
from reconciler.render.sandbox import hidden_by_private_tmp
from tests.conftest import started
from tests.support.monitoring import wait_for
from tests.support.sites import Site

pytestmark = [pytest.mark.systemd, pytest.mark.slow]


@pytest.fixture
def manager_in_tmp() -> Iterator[PrivateManager]:
    # The manager's runtime folder (its notify socket) stays out of /tmp, as a real
    # user manager's /run/user/UID does; what Atlas is given lives under /tmp.
    tmp = Path(tempfile.mkdtemp(prefix="atlas-sandbox-", dir=tempfile.gettempdir()))
    assert hidden_by_private_tmp(tmp)

    def make() -> PrivateManager:
        manager = PrivateManager()
        manager.config_home, manager.state_home = tmp / "config", tmp / "state"
        for d in (manager.config_home, manager.state_home):
            d.mkdir(mode=0o700)
        return manager

    try:
        with started(make) as manager:
            yield manager
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_config_state_and_repository_under_tmp_converge(manager_in_tmp: PrivateManager) -> None:
    site = Site(manager_in_tmp, manager_in_tmp.state_home.parent / "repos")
    site.change(
        "environments/development/environment.yaml",
        "reconciler: {enabled: false,",
        "reconciler: {enabled: true,",
    )
    done = site.reconcile()
    assert done.returncode == 0, done.stdout + done.stderr
    unit = (site.units_dir / "atlas-core.service").read_text()
    assert f"BindPaths={manager_in_tmp.state_home}/atlas/data" in unit
    assert f"BindReadOnlyPaths={manager_in_tmp.config_home}/atlas" in unit
    assert "ReadWritePaths=/tmp" not in unit
    reconciler = (site.units_dir / "atlas-reconciler.service").read_text()
    assert f"BindReadOnlyPaths={site.bare}" in reconciler
    for name in ("atlas-core.service", "atlas-api.service", "atlas-monitoring.service"):
        # the reconciler's own service, just handed over, may be touching a unit
        # still: each is running within its TimeoutStartSec=
        wait_for(lambda n=name: site.state(n) == "active/running", 60, f"{name} running")

    def welcome() -> bool:
        items = httpx.get(f"http://127.0.0.1:{site.api}/v1/items", timeout=5).json()
        return "Welcome to Atlas" in {i.get("title") for i in items.get("items", [])}

    wait_for(welcome, 60, "the bundled content served from a data folder under /tmp")

    def reconciler_healthy() -> bool:
        try:
            url = f"http://127.0.0.1:{site.reconciler}/healthz"
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # the reconciler's service reads the repository under /tmp and reports Synced
    wait_for(reconciler_healthy, 60, "the reconciler's service answering /healthz")
    assert site.state("atlas-reconciler.service") == "active/running"
