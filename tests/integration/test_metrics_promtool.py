"""Both services' /metrics pass ``promtool check metrics`` (names, types, units, help)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest

from atlas.core import settings as core_settings
from atlas.core.store import open_store
from atlas.core.worker import Worker
from tests.support.api import Api
from tests.support.feeds import FeedServer, Reply, core_config, entries, rss20, source

pytestmark = pytest.mark.prometheus


def promtool(text: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    if tool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing (scripts/test installs the prometheus package)")
        pytest.skip("promtool is not installed")
    return subprocess.run(
        [tool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )


def test_core_metrics_pass_promtool(tmp_path: Path) -> None:
    with FeedServer() as srv:
        srv.routes["/ok"] = Reply(body=rss20(entries("ok", 3)))
        srv.routes["/bad"] = Reply(500, b"")
        cfg = core_config(
            tmp_path / "atlas.db",
            [source("ok", url=srv.url("/ok")), source("bad", url=srv.url("/bad"))],
        )
        settings = core_settings.from_dict(cfg, tmp_path / "core.json").for_instance(1)
        worker = Worker(settings, open_store(tmp_path / "atlas.db", 5), rand=lambda: 0.0)
        worker.start()
        worker.run_until_idle(20)
        worker.shutdown()
        worker.store.close()
    text = generate_latest(worker.metrics.registry).decode()
    for name in (
        "atlas_ingest_items_total",
        "atlas_ingest_fetch_duration_seconds_bucket",
        "atlas_ingest_backlog",
        "atlas_ingest_source_errors",
        "atlas_circuit_state",
        "atlas_dlq_size",
    ):
        assert f"\n{name}" in text, name
    result = promtool(text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_api_metrics_pass_promtool(tmp_path: Path) -> None:
    api = Api(tmp_path)
    try:
        api.get("/v1/items")
        api.get("/v1/items/1")
        api.get("/healthz")
        resp = httpx.get(f"http://127.0.0.1:{api.port}/metrics", timeout=5)
    finally:
        api.close()
    assert "atlas_http_request_duration_seconds_bucket" in resp.text
    assert "\nprocess_cpu_seconds_total " in resp.text, "every component exports process_*"
    assert "_created" not in resp.text
    result = promtool(resp.text)
    assert result.returncode == 0, result.stdout + result.stderr
