"""``atlas core`` as a real process against hostile servers on 127.0.0.1: a source
whose server trickles its headers shows in /healthz (degraded, named) and in
``atlas_ingest_stalled_sources`` while good sources are still stored, and SIGTERM
mid-fetch ends the worker by the graceful path (the fetch is cut short after the
grace for work in flight, not abandoned), well within its stop deadline."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import generate_latest

from atlas.core import settings as core_settings
from atlas.core.store import open_store
from atlas.core.worker import Worker
from atlas.resilience.retry import RetryPolicy
from seams.stopping import GRACE_S
from seams.testing import FakeClock
from tests.integration.test_core_process import query, start_core
from tests.support.feeds import (
    FeedServer,
    NotifyListener,
    Reply,
    core_config,
    entries,
    rss20,
    source,
    write_json,
)
from tests.support.hostile import TrickleServer, gzip_bomb, gzipped
from tests.support.monitoring import wait_for
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 0.5  # per source: a fetch's deadline is twice that


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


def healthz(port: int) -> dict[str, Any]:
    reply = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def stalled_metric(port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    line = next(x for x in text.splitlines() if x.startswith("atlas_ingest_stalled_sources "))
    return float(line.split()[1])


def test_stalling_sources_show_in_health_and_metrics_and_starve_no_one(
    tmp_path: Path, server: FeedServer
) -> None:
    server.routes["/good"] = Reply(body=rss20(entries("good", 3)))
    port = free_port()
    db = tmp_path / "atlas.db"
    with TrickleServer(every_s=0.1, for_s=30) as slow_a, TrickleServer(0.1, 30) as slow_b:
        sources = [
            source("slow-a", url=slow_a.url(), timeoutSeconds=TIMEOUT_S),
            source("slow-b", url=slow_b.url(), timeoutSeconds=TIMEOUT_S),
            source("good", url=server.url("/good"), timeoutSeconds=TIMEOUT_S),
        ]
        config = write_json(
            tmp_path / "core.json", core_config(db, sources, metrics_port=port, concurrency=2)
        )
        listener = NotifyListener(tmp_path / "notify.sock")
        proc = start_core(config, listener.path, tmp_path / "core.log")
        try:
            listener.wait_for("READY=1")
            assert stalled_metric(port) in (0, 1, 2), "the series is there from the start"
            # each stalled fetch ends at its 1 s deadline, not retried: then "good" gets a slot
            body = wait_for(
                lambda: (h := healthz(port))["stalledSources"] == 2 and h, 10, "both stalled"
            )
            assert body["status"] == "degraded" and body["stalled"] == ["slow-a", "slow-b"]
            assert stalled_metric(port) == 2
            wait_for(lambda: query(db, "SELECT COUNT(*) FROM items") == [(3,)], 10, "good")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
            listener.close()
    log = (tmp_path / "core.log").read_text()
    assert "source slow-a stalls: http" in log and "still incomplete after 1s" in log, log


def test_sigterm_mid_fetch_cuts_the_fetch_short_and_exits_promptly(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "atlas.db"
    with TrickleServer(every_s=0.1, for_s=60) as slow:
        config = write_json(
            tmp_path / "core.json",
            core_config(db, [source("slow", url=slow.url())], metrics_port=port, timeoutSeconds=30),
        )
        listener = NotifyListener(tmp_path / "notify.sock")
        proc = start_core(config, listener.path, tmp_path / "core.log")
        try:
            listener.wait_for("READY=1")
            wait_for(lambda: slow.connections > 0, 10, "the fetch to start")
            time.sleep(0.3)  # well inside the fetch: headers are trickling
            asked = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            took = time.monotonic() - asked
        finally:
            if proc.poll() is None:
                proc.kill()
            listener.close()
    log = (tmp_path / "core.log").read_text()
    # the grace for work in flight, then the cut (a read looks every 0.2 s)
    assert GRACE_S <= took < GRACE_S + 1.0, (took, log)
    assert "abandoning" not in log and "did not stop" not in log, log
    assert "cancelled by shutdown" in log, log
    assert query(db, "SELECT COUNT(*) FROM dead_letters") in ([(0,)], []), "not a failure"


def test_a_stalled_source_stops_counting_once_its_server_answers(
    tmp_path: Path, server: FeedServer
) -> None:
    """In-process: each attempt's outcome sets or clears the source's stall."""
    server.routes["/feed"] = Reply(body=rss20(entries("a", 2)), delay_s=1.0)
    db = tmp_path / "atlas.db"
    raw = core_config(db, [source("s", url=server.url("/feed"), timeoutSeconds=0.3)])
    core = replace(core_settings.from_dict(raw, Path("core.json")), retry=RetryPolicy(attempts=1))
    clock = FakeClock()
    worker = Worker(core.for_instance(1), open_store(db, 5), clock=clock, rand=lambda: 0.0)
    try:
        worker.start()
        worker.run_until_idle(10)
        assert worker.stalled_sources() == ["s"]
        assert (
            "atlas_ingest_stalled_sources 1.0" in generate_latest(worker.metrics.registry).decode()
        )
        server.routes["/feed"] = Reply(body=rss20(entries("a", 2)))
        clock.advance(3600)
        worker.run_until_idle(10)
        assert worker.stalled_sources() == []
        assert (
            "atlas_ingest_stalled_sources 0.0" in generate_latest(worker.metrics.registry).decode()
        )
    finally:
        worker.shutdown()
        worker.store.close()


def memory_max(component: str = "core") -> int:
    """The MemoryMax of the component's unit in the example manifests (base), in bytes."""
    docs = yaml.safe_load_all((ROOT / "manifests/base/deployments.yaml").read_text())
    spec = next(d["spec"] for d in docs if d["spec"]["component"] == component)
    text = spec["resources"]["memoryMax"]
    return int(text[:-1]) << {"K": 10, "M": 20, "G": 30}[text[-1]]


def test_bombs_keep_the_worker_under_its_memory_max(tmp_path: Path, server: FeedServer) -> None:
    """Nested, plain and redirected gzip bombs of 256 MiB each (the old worker decoded
    a nested one whole) against a 10 MiB body cap: the process's peak RSS, as the
    kernel counted it, stays under its unit's MemoryMax."""
    inner = gzip_bomb(256 << 20, layers=1)
    server.routes["/nested"] = Reply(
        body=gzipped(inner), headers={"Content-Encoding": "gzip, gzip"}
    )
    server.routes["/plain"] = Reply(body=inner, headers={"Content-Encoding": "gzip"})
    server.routes["/moved"] = Reply(301, inner, {"Location": "/plain", "Content-Encoding": "gzip"})
    names = ("nested", "plain", "moved")
    db = tmp_path / "atlas.db"
    config = write_json(
        tmp_path / "core.json",
        core_config(
            db,
            [source(n, url=server.url(f"/{n}")) for n in names],
            metrics_port=free_port(),
            maxBodyBytes=10 << 20,
        ),
    )
    listener = NotifyListener(tmp_path / "notify.sock")
    proc = start_core(config, listener.path, tmp_path / "core.log")
    try:
        listener.wait_for("READY=1")
        failed = "SELECT COUNT(*) FROM sources WHERE consecutive_errors > 0"
        wait_for(lambda: query(db, failed) == [(3,)], 30, "every bomb refused")
        proc.send_signal(signal.SIGTERM)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    peak = usage.ru_maxrss * 1024  # Linux counts kilobytes
    assert peak < memory_max("core"), f"peak RSS {peak >> 20} MiB"
    assert proc.returncode == 0
    errors = dict(query(db, "SELECT name, last_error FROM sources"))
    assert "stacks 2 encodings" in str(errors["nested"]), errors
    assert "decoded body exceeds the limit of 10485760 bytes" in str(errors["plain"]), errors
    assert "decoded body exceeds" in str(errors["moved"]), errors


def test_a_fetch_that_ran_out_its_deadline_is_not_retried_in_process(tmp_path: Path) -> None:
    """A server that stalled a whole deadline would stall the retries too, holding a
    fetch slot three times as long: the scheduler's error backoff tries it later."""
    db = tmp_path / "atlas.db"
    with TrickleServer(every_s=0.05, for_s=10) as slow:
        raw = core_config(db, [source("s", url=slow.url(), timeoutSeconds=0.3)])
        core = core_settings.from_dict(raw, Path("core.json"))
        assert core.retry.attempts > 1
        worker = Worker(core.for_instance(1), open_store(db, 5), clock=FakeClock())
        try:
            worker.start()
            started = time.monotonic()
            worker.run_until_idle(10)
            took = time.monotonic() - started
        finally:
            worker.shutdown()
            worker.store.close()
        assert slow.connections == 1 and took < 0.6 + 0.5, (slow.connections, took)
    assert worker.stalled_sources() == ["s"]
    assert query(db, "SELECT consecutive_errors FROM sources") == [(1,)]
