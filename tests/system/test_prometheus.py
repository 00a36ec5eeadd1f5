"""A real Prometheus (Debian package) scrapes the reconciler and reads drift back."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.net import free_port
from tests.support.rigs import Watching


@pytest.fixture
def prometheus_bin() -> str:
    found = shutil.which("prometheus")
    if found is None:
        pytest.fail("prometheus is missing: scripts/test installs the Debian package")
    return found


def query(base: str, expr: str) -> list[dict]:
    reply = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5)
    reply.raise_for_status()
    return list(reply.json()["data"]["result"])


@pytest.mark.prometheus
def test_prometheus_scrapes_drift_and_sync(tmp_path: Path, remote, prometheus_bin: str) -> None:
    bare, _ = remote
    w = Watching(tmp_path / "root", str(bare), "main", None, interval=0.3)
    w.reconciler.options.self_heal = False  # drift stays visible
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: atlas-reconciler\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{w.server.port}']}}]\n"
    )
    check = subprocess.run(
        ["promtool", "check", "config", str(config)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    prom = subprocess.Popen(
        [
            prometheus_bin,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        w.start()
        w.host.runtime.stop("atlas-api.service")  # drift: a unit stopped by hand
        deadline = time.monotonic() + 40
        drift: list[dict] = []
        while time.monotonic() < deadline:
            try:
                drift = query(base, 'atlas_drift_resources{kind="unit-stopped"}')
            except httpx.HTTPError:
                drift = []
            if drift and float(drift[0]["value"][1]) == 1.0:
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"Prometheus never saw the drift: {drift}; stderr: {prom.stderr}")
        sync = query(base, "atlas_sync_info")
        assert sync and sync[0]["metric"]["status"] == "OutOfSync"
        assert sync[0]["metric"]["applied_revision"] == w.applied_sha()[:12]
        up = query(base, 'up{job="atlas-reconciler"}')
        assert float(up[0]["value"][1]) == 1.0
    finally:
        prom.terminate()
        prom.wait(timeout=20)
        w.close()
