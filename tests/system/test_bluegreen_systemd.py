"""Blue-green under a real systemd user manager, with real wheels and real traffic:
the api upgraded 0.1.0 → 0.2.0 and back, a release that is never ready and one that
fails requests only under traffic each rolled back automatically; a client sending
requests all the while through the shared port sees no failed request."""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from atlas.usermanager import PrivateManager
from tests.support.monitoring import wait_for
from tests.support.net import free_port_run
from tests.support.sites import Site
from tests.support.traffic import Traffic
from tests.support.wheels import add_atlas_wheel, build_wheelhouse

pytestmark = [pytest.mark.systemd, pytest.mark.slow]
API = "  component: api\n  version: {}\n"
NEVER_READY, FAILS_UNDER_TRAFFIC = "0.3.0", "0.4.0"


def _never_ready(src: Path) -> None:
    reader = src / "atlas/api/reader.py"
    text = reader.read_text()
    assert text.count('return True, "ok"') == 1
    reader.write_text(text.replace('return True, "ok"', 'return False, "a bad release"'))


def _fails_under_traffic(src: Path) -> None:
    app = src / "atlas/api/app.py"
    text = app.read_text()
    anchor = "    async def list_items(request: Request) -> JSONResponse:\n"
    assert text.count(anchor) == 1
    bad = anchor + (
        "        app.state.served = getattr(app.state, 'served', 0) + 1\n"
        "        if app.state.served % 3 == 0:\n"
        "            return JSONResponse({'error': 'a bad release'}, 500)\n"
    )
    app.write_text(text.replace(anchor, bad))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = build_wheelhouse(tmp_path_factory.mktemp("bluegreen-wheels"))
    add_atlas_wheel(dest, "0.2.0")
    add_atlas_wheel(dest, NEVER_READY, _never_ready)
    add_atlas_wheel(dest, FAILS_UNDER_TRAFFIC, _fails_under_traffic)
    return dest


def blue_green(site: Site, preview: int) -> None:
    """The site's api as blueGreen with short delays (the promises under test are the
    same at any length)."""
    site.change(
        "base/deployments.yaml",
        "  strategy: {type: rolling, maxUnavailable: 1}\n",
        "  strategy:\n    type: blueGreen\n    blueGreen:\n"
        f"      previewPort: {preview}\n      scaleDownDelay: 1s\n"
        "      prePromotionAnalysis: {interval: 1s, count: 2}\n",
    )
    site.change(
        "base/deployments.yaml", "    interval: 500ms\n    timeout: 30s\n",
        "    interval: 500ms\n    timeout: 15s\n",
    )  # fmt: skip


@pytest.fixture
def site(systemd_user: PrivateManager, wheels: Path) -> Site:
    site = Site(systemd_user, systemd_user.base / "repos")
    site.change("environments/development/environment.yaml", "  logLevel: debug\n",
                f"  logLevel: debug\n  releases: {{source: {wheels}}}\n")  # fmt: skip
    blue_green(site, free_port_run(2, (site.api, site.core, site.monitoring, site.reconciler)))
    done = site.reconcile()
    assert done.returncode == 0, done.stdout + done.stderr
    assert version_on(site.api) == "0.1.0"
    return site


def version_on(port: int) -> str:
    reply = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert reply.status_code == 200, reply.text
    return str(reply.json()["version"])


def rollout(site: Site) -> dict[str, object]:
    done = site.atlas("rollout", "status", "api", "--scope", "user", "-o", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def upgrade(site: Site, old: str, new: str) -> str:
    site.change("base/deployments.yaml", API.format(old), API.format(new))
    done = site.reconcile()
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"


def test_blue_green_upgrade_and_downgrade_fail_no_request(site: Site) -> None:
    with Traffic(site.api) as traffic:
        out = upgrade(site, "0.1.0", "0.2.0")
        assert out.startswith("exit 0"), out
        assert version_on(site.api) == "0.2.0"
        out = upgrade(site, "0.2.0", "0.1.0")
        assert out.startswith("exit 0"), out
        assert version_on(site.api) == "0.1.0"
    assert traffic.failed == [], f"{len(traffic.failed)} of {traffic.ok} failed"
    assert traffic.ok > 50
    assert site.state("atlas-api@2.service").startswith("inactive")
    status = rollout(site)
    assert (status["result"], status["from"], status["to"]) == ("completed", "0.2.0", "0.1.0")


def test_a_release_never_ready_is_rolled_back_and_fails_no_request(site: Site) -> None:
    stable_pid = site.pid("atlas-api@1.service")
    with Traffic(site.api) as traffic:
        out = upgrade(site, "0.1.0", NEVER_READY)
        assert out.startswith("exit 1"), out
    assert "atlas-api@2.service was not ready within 15s" in out, out
    assert traffic.failed == [], f"{len(traffic.failed)} of {traffic.ok} failed"
    assert version_on(site.api) == "0.1.0"
    assert site.pid("atlas-api@1.service") == stable_pid, "the stable replica kept serving"
    assert site.state("atlas-api@2.service").startswith("inactive")
    status = rollout(site)
    assert status["to"] == NEVER_READY and status["result"] == "aborted", status


def test_a_release_failing_under_traffic_is_aborted_by_analysis(site: Site) -> None:
    stable_pid = site.pid("atlas-api@1.service")
    out = upgrade(site, "0.1.0", FAILS_UNDER_TRAFFIC)
    assert out.startswith("exit 1"), out
    assert "analysis failed" in out and "errorRatio" in out, out
    assert version_on(site.api) == "0.1.0"
    assert site.pid("atlas-api@1.service") == stable_pid
    assert site.state("atlas-api@2.service").startswith("inactive")
    status = rollout(site)
    assert status["to"] == FAILS_UNDER_TRAFFIC and status["result"] == "aborted", status


def test_a_reconciler_killed_mid_rollout_is_finished_by_the_next_run(site: Site) -> None:
    site.change("base/deployments.yaml", API.format("0.1.0"), API.format("0.2.0"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "atlas", "reconcile", "--once", *site.reconcile_args()],
        env=site.manager.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _phase(site) == "analysis", 120, "the analysis", every=0.1)
        assert site.state("atlas-api@2.service") == "active/running"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    out = site.reconcile()
    assert out.returncode == 0, out.stdout + out.stderr
    assert "carried over" in out.stdout + out.stderr or "interrupted" in out.stdout + out.stderr
    assert version_on(site.api) == "0.2.0"
    assert site.state("atlas-api@2.service").startswith("inactive"), "no replica left behind"
    status = rollout(site)
    assert (status["result"], status["to"]) == ("completed", "0.2.0"), status


def _phase(site: Site) -> str | None:
    """The rollout's phase, read straight from the state database (a command takes
    longer to start than some phases last)."""
    db = site.manager.state_home / "atlas/reconciler/state.db"
    if not db.exists():
        return None
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = 'rollout:api'").fetchone()
    doc = json.loads(row[0]) if row else {}
    return str(doc["phase"]) if doc.get("to") == "0.2.0" else None
