"""End to end under a real systemd manager: the reconciler renders the units
(with their sandboxing) for the development environment, and atlas-core and
atlas-api run as Type=notify services, ingest from a local feed, serve it, and
stop cleanly; the atlas-services oneshot backs the database up."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler import pipeline
from reconciler.host.paths import host_layout
from reconciler.render.desired import HostFacts, RenderContext
from tests.support.feeds import FeedServer, Reply, entries, rss20
from tests.support.net import free_port

pytestmark = [pytest.mark.systemd, pytest.mark.slow]


def prepare_manifests(repo: Path, feed_url: str, api_port: int, core_port: int) -> None:
    env_file = repo / "environments/development/environment.yaml"
    text = env_file.read_text()
    text = text.replace("port: 18080", f"port: {api_port}")
    text = text.replace("metricsPort: 19101", f"metricsPort: {core_port}")
    text = text.replace("metricsPort: 19102", f"metricsPort: {free_port()}")
    env_file.write_text(text)
    with (repo / "environments/development/sources.yaml").open("a") as fh:
        fh.write(
            "---\napiVersion: atlas/v1\nkind: Source\nmetadata:\n  name: local-feed\n"
            f"spec:\n  type: rss\n  url: {feed_url}\n  interval: 1m\n"
        )


def render_into_manager(repo: Path, manager: Any, tmp_path: Path) -> Any:
    layout = host_layout("user", Path("/"), manager.env)
    ctx = RenderContext(layout, HostFacts.current())
    target = pipeline.Target(str(repo), None, ".", "development")
    prepared = pipeline.prepare(
        pipeline.fetch(target, tmp_path / "git-cache"), "development", ctx, None
    )
    for f in prepared.rendered.files:
        path = Path(str(f.path))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.content)
        os.chmod(path, f.mode)
    for d in prepared.rendered.directories:
        Path(str(d.path)).mkdir(parents=True, exist_ok=True, mode=d.mode)
    return layout


def unit_state(manager: Any, unit: str) -> dict[str, str]:
    return manager.show(
        unit, "ActiveState", "SubState", "Result", "ExecMainStatus", "NRestarts", "StatusText"
    )


def journal_hint(manager: Any, unit: str) -> str:
    out = manager.systemctl("status", "--no-pager", "-n", "30", unit, check=False)
    return out.stdout + out.stderr


def test_core_and_api_run_as_notify_units(systemd_user: Any, example_repo: Path, tmp_path: Path):
    with FeedServer() as srv:
        srv.routes["/feed"] = Reply(body=rss20(entries("sd", 12)))
        api_port, core_port = free_port(), free_port()
        prepare_manifests(example_repo, srv.url("/feed"), api_port, core_port)
        layout = render_into_manager(example_repo, systemd_user, tmp_path)
        unit_dir = Path(str(layout.unit_dir))
        assert (unit_dir / "atlas-core.service").exists()
        core_unit = (unit_dir / "atlas-core.service").read_text()
        assert "Type=notify" in core_unit and "WatchdogSec=60s" in core_unit
        assert "SystemCallFilter=~@privileged @resources" in core_unit
        systemd_user.systemctl("daemon-reload")
        for unit in ("atlas-core.service", "atlas-api.service"):
            done = systemd_user.systemctl("start", unit, check=False)
            state = unit_state(systemd_user, unit)
            assert done.returncode == 0 and state["ActiveState"] == "active", journal_hint(
                systemd_user, unit
            )
        assert "ingesting" in unit_state(systemd_user, "atlas-core.service")["StatusText"]

        base = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 30
        got: list[Any] = []
        while time.monotonic() < deadline:
            resp = httpx.get(f"{base}/v1/items", params={"source": "local-feed"}, timeout=5)
            if resp.status_code == 200 and len(resp.json()["items"]) == 12:
                got = resp.json()["items"]
                break
            time.sleep(0.2)
        assert len(got) == 12, journal_hint(systemd_user, "atlas-core.service")
        assert httpx.get(f"{base}/readyz", timeout=5).status_code == 200
        metrics = httpx.get(f"http://127.0.0.1:{core_port}/metrics", timeout=5).text
        assert 'atlas_ingest_items_total{result="new",source="local-feed"} 12.0' in metrics
        # the load reaches the rate limits inside the sandbox (sysinfo(2) if /proc hides it)
        (load,) = [x for x in metrics.splitlines() if x.startswith("atlas_ingest_system_load")]
        assert float(load.split()[1]) >= 0.0, load
        assert httpx.get(f"http://127.0.0.1:{core_port}/healthz", timeout=5).status_code == 200

        job = systemd_user.systemctl("start", "atlas-services.service", check=False)
        assert job.returncode == 0, journal_hint(systemd_user, "atlas-services.service")
        backups = Path(str(layout.data_dir)) / "backups"
        assert any(p.name.startswith("atlas-") for p in backups.iterdir())

        for unit in ("atlas-api.service", "atlas-core.service"):
            systemd_user.systemctl("stop", unit)
            state = unit_state(systemd_user, unit)
            assert state["Result"] == "success", (state, journal_hint(systemd_user, unit))
            assert state["ExecMainStatus"] == "0" and state["NRestarts"] == "0", state
