"""``atlas report --prometheus URL`` against a real Prometheus holding a history the
test writes: three hours of Atlas's own series, backfilled with ``promtool tsdb
create-blocks-from openmetrics``, then served by ``prometheus`` on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from atlas.cli import main
from tests.support.monitoring import wait_for
from tests.support.net import free_port

pytestmark = pytest.mark.prometheus
STEP = 60


def history(now: float) -> str:
    """Per minute for three hours: 1 item, 9 good fetches and 1 failed, 95 good API
    requests and 5 failing, a reconcile; two rollbacks an hour ago; a source failing."""
    start = int(now) - 3 * 3600
    times = list(range(start, int(now) - 30, STEP))

    def counter(family: str, labels: str, per_step: float) -> list[str]:
        return [f"{family}_total{{{labels}}} {n * per_step} {t}" for n, t in enumerate(times)]

    lines = ["# TYPE atlas_ingest_items counter"]
    lines += counter("atlas_ingest_items", 'source="ok",result="new"', 1)
    lines += ["# TYPE atlas_ingest_fetches counter"]
    lines += counter("atlas_ingest_fetches", 'source="ok",status="ok"', 9)
    lines += counter("atlas_ingest_fetches", 'source="bad",status="failed"', 1)
    lines += ["# TYPE atlas_http_requests counter"]
    lines += counter("atlas_http_requests", 'route="/v1/items",method="GET",status="200"', 95)
    lines += counter("atlas_http_requests", 'route="/v1/items",method="GET",status="503"', 5)
    lines += ["# TYPE atlas_reconcile counter"]
    lines += counter("atlas_reconcile", 'result="success"', 1)
    lines += ["# TYPE atlas_rollbacks counter"]
    lines += [f"atlas_rollbacks_total {0 if t < now - 3600 else 2} {t}" for t in times]
    lines += ["# TYPE atlas_ingest_source_errors gauge"]
    lines += [f'atlas_ingest_source_errors{{source="bad"}} 7 {t}' for t in times]
    lines += [f'atlas_ingest_source_errors{{source="ok"}} 0 {t}' for t in times]
    return "\n".join(lines) + "\n# EOF\n"


@pytest.fixture
def prometheus(tmp_path: Path):
    tool, server = shutil.which("promtool"), shutil.which("prometheus")
    if tool is None or server is None:
        pytest.skip("the prometheus package is not installed")
    source = tmp_path / "history.om"
    source.write_text(history(time.time()))
    tsdb = tmp_path / "tsdb"
    done = subprocess.run(
        [tool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1m}\nscrape_configs: []\n")
    port = free_port()
    proc = subprocess.Popen(
        [
            server,
            f"--config.file={config}",
            f"--storage.tsdb.path={tsdb}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{base}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=60)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_figures_from_prometheus(prometheus: str, capsys) -> None:
    code = main(["report", "--since", "2h", "--prometheus", prometheus, "-o", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    ing, api, rec = doc["ingestion"], doc["api"], doc["reconciler"]
    assert ing["items"] == pytest.approx(120, rel=0.03)
    assert ing["items_per_hour"] == pytest.approx(60, rel=0.03)
    assert ing["success_ratio"] == pytest.approx(0.9, abs=0.001)
    assert ing["failing_sources"] == [{"source": "bad", "items": 0, "consecutive_errors": 7}]
    assert api["error_ratio"] == pytest.approx(0.05, abs=0.001)
    assert api["requests"] == pytest.approx(12000, rel=0.03)
    assert rec["rollbacks"] == 2
    assert rec["outcomes"]["success"] == pytest.approx(120, rel=0.03)


def test_an_unreachable_prometheus_is_a_clear_error_without_its_password(capsys) -> None:
    port = free_port()
    code = main(["report", "--prometheus", f"http://reader:s3cret@127.0.0.1:{port}"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"--prometheus http://127.0.0.1:{port}: cannot reach it (ConnectError" in err
    assert "s3cret" not in err and "Traceback" not in err


def test_something_else_than_prometheus_is_a_clear_error(capsys) -> None:
    from tests.support.monitoring import TestServer

    server = TestServer()  # answers text, not the Prometheus API
    try:
        code = main(["report", "--prometheus", server.url])
    finally:
        server.close()
    err = capsys.readouterr().err
    assert code == 1
    assert "expected the Prometheus HTTP API (JSON from /api/v1/query), got HTTP" in err
