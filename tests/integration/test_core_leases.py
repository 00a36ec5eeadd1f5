"""Several ``atlas core --instance N`` processes share the sources through leases in
the content database: a SIGKILLed instance's sources are fetched by another within
one lease period, nothing is lost, and no source is fetched twice at once; a holder
paused past its lease cannot store over the instance that took it over; and the
replicas share one circuit breaker per host."""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from atlas.core import settings as core_settings
from atlas.core.store import open_store
from atlas.core.worker import Worker
from atlas.resilience.breaker import BreakerPolicy, State
from atlas.resilience.retry import RetryPolicy
from seams.testing import FakeClock
from tests.support.feeds import (
    Entry,
    FeedServer,
    Reply,
    Seen,
    core_config,
    entries,
    rss20,
    source,
    write_json,
)
from tests.support.net import free_port_run

LEASE_S = 3.0
TICK_S = 1.0  # the loop's longest wait between two looks at the database


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


@dataclass
class Fetches:
    """Server-side record of every request per path: (start, end) in monotonic time."""

    spans: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def route(self, path: str, items: list[Entry], delay_s: float) -> Callable[[Seen], Reply]:
        def reply(seen: Seen) -> Reply:
            start = time.monotonic()
            with self.lock:
                self.spans.setdefault(path, []).append((start, start + delay_s))
            return Reply(body=rss20(items), delay_s=delay_s)

        return reply

    def of(self, path: str) -> list[tuple[float, float]]:
        with self.lock:
            return list(self.spans.get(path, []))


def start(config: Path, instance: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atlas",
                "core",
                "--config",
                str(config),
                "--instance",
                f"{instance}",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def query(db: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []  # not migrated yet
    finally:
        conn.close()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def held_by(db: Path, instance: int) -> set[str]:
    rows = query(db, "SELECT source FROM source_leases WHERE holder LIKE ?", f"%/core@{instance}/%")
    return {str(r[0]) for r in rows}


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def test_a_killed_instances_sources_are_taken_over_within_one_lease_period(
    tmp_path: Path, server: FeedServer
) -> None:
    feeds, per_feed, delay = 18, 5, 1.0
    fetches = Fetches()
    sources = []
    for f in range(feeds):
        name = f"feed-{f}"
        server.routes[f"/{name}"] = fetches.route(f"/{name}", entries(name, per_feed), delay)
        sources.append(source(name, url=server.url(f"/{name}")))  # due once (300 s)
    db = tmp_path / "atlas.db"
    cfg = core_config(db, sources, metrics_port=free_port_run(3), replicas=3, concurrency=2)
    cfg["leaseSeconds"] = LEASE_S
    config = write_json(tmp_path / "core.json", cfg)
    procs = [start(config, n, tmp_path / f"core-{n}.log") for n in (1, 2, 3)]
    try:
        wait_until(lambda: bool(held_by(db, 1)), 30, "instance 1 to hold leases")
        wait_until(
            lambda: (
                query(db, "SELECT COUNT(*) FROM sources WHERE last_success_at IS NOT NULL")
                >= [(2,)]
            ),
            30,
            "a few batches to be stored",
        )
        victim = procs[0]
        victim.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        victim.wait(timeout=10)
        orphans = held_by(db, 1)  # final: its store-and-release is one transaction
        assert orphans, "the kill must land mid-batch"
        wait_until(
            lambda: (
                query(db, "SELECT COUNT(*) FROM sources WHERE last_success_at IS NULL") == [(0,)]
            ),
            60,
            "every source to be stored",
        )
    finally:
        stop_all(procs)
    per_source = dict(query(db, "SELECT source, COUNT(*) FROM items GROUP BY source"))
    assert per_source == {f"feed-{f}": per_feed for f in range(feeds)}, "nothing lost"
    assert held_by(db, 1) == set()
    for f in range(feeds):
        name = f"feed-{f}"
        spans = sorted(fetches.of(f"/{name}"))
        for (_, end), (next_start, _) in itertools.pairwise(spans):
            assert next_start >= end, f"{name} was fetched twice at once: {spans}"
        if name in orphans:
            assert len(spans) == 2, f"{name}: the killed fetch and the takeover: {spans}"
            took = spans[1][0] - killed_at
            assert took <= LEASE_S + TICK_S + 0.5, f"{name} taken over {took:.2f}s after the kill"
        else:
            assert len(spans) == 1, f"{name} fetched {len(spans)} times"
    logs = "".join((tmp_path / f"core-{n}.log").read_text() for n in (2, 3))
    assert "Traceback" not in logs


def test_a_paused_holders_late_store_is_refused(tmp_path: Path, server: FeedServer) -> None:
    held = threading.Event()
    first = threading.Event()
    calls: list[int] = []

    def reply(seen: Seen) -> Reply:
        calls.append(1)
        if len(calls) == 1:  # the first holder: answered only after the takeover
            first.set()
            held.wait(30)
            return Reply(body=rss20(entries("late", 3)))
        return Reply(body=rss20(entries("fresh", 2)))

    server.routes["/f"] = reply
    db = tmp_path / "atlas.db"
    cfg = core_config(
        db,
        [source("f", url=server.url("/f"))],
        metrics_port=free_port_run(2),
        replicas=2,
        timeoutSeconds=60,
    )
    cfg["leaseSeconds"] = LEASE_S
    config = write_json(tmp_path / "core.json", cfg)
    log_a = tmp_path / "core-1.log"
    a = start(config, 1, log_a)
    procs = [a]
    try:
        assert first.wait(30), "instance 1 fetches"
        a.send_signal(signal.SIGSTOP)  # paused past its lease (a GC pause, a frozen VM)
        procs.append(start(config, 2, tmp_path / "core-2.log"))
        wait_until(lambda: query(db, "SELECT COUNT(*) FROM items") == [(2,)], 30, "the takeover")
        held.set()
        a.send_signal(signal.SIGCONT)
        wait_until(lambda: "dropped, not stored" in log_a.read_text(), 30, "the late result")
    finally:
        held.set()
        if a.poll() is None:
            a.send_signal(signal.SIGCONT)
        stop_all(procs)
    titles = {str(t) for (t,) in query(db, "SELECT title FROM items")}
    assert titles == {"fresh item 0", "fresh item 1"}, "the late holder wrote nothing"
    assert len(calls) == 2
    text = log_a.read_text()
    assert "lease of source f lost" in text and "Traceback" not in text


def test_replicas_share_one_circuit_per_host(tmp_path: Path, server: FeedServer) -> None:
    """Failures seen by two replicas add up: the circuit opens once for both, and
    the hosts row says what both see (not the last writer's private view)."""
    for n in ("a", "b", "c"):
        server.routes[f"/{n}"] = Reply(status=503)
    db = tmp_path / "atlas.db"
    cfg = core_config(db, [source(n, url=server.url(f"/{n}")) for n in ("a", "b", "c")])
    cfg["replicas"] = 2
    core = replace(
        core_settings.from_dict(cfg, tmp_path / "core.json"),
        breaker=BreakerPolicy(failure_threshold=2, open_s=60),
        retry=RetryPolicy(attempts=1),
    )
    core = replace(core, fetch=replace(core.fetch, concurrency=1))
    clock = FakeClock()
    one, two = (
        Worker(core.for_instance(n), open_store(db, 5), clock=clock, rand=lambda: 0.0)
        for n in (1, 2)
    )
    try:
        one.start()
        two.start()
        assert one.tick(5) == 1 and not one.in_flight  # one fetch stored: one failure
        assert one.breakers.state(server.host) is State.CLOSED
        assert two.tick(5) == 1 and not two.in_flight  # the second, by the other replica
        assert one.breakers.state(server.host) is State.OPEN
        assert one.tick(0) == 0 and two.tick(0) == 0
        assert len(server.seen) == 2, "the third source waits for the shared circuit"
        assert query(db, "SELECT circuit FROM hosts") == [("open",)]
        assert one.waiting == 1 and two.waiting == 1
    finally:
        for w in (one, two):
            w.shutdown()
            w.store.close()


def test_a_stopped_instance_releases_its_leases_at_once(tmp_path: Path, server: FeedServer) -> None:
    """SIGTERM cuts a fetch short after the 2 s grace and gives its lease back, so the
    other instance takes the source at once, not after the (30 s) lease period."""
    arrivals: list[float] = []

    def reply(seen: Seen) -> Reply:
        arrivals.append(time.monotonic())
        return Reply(body=rss20(entries("s", 2)), delay_s=20.0 if len(arrivals) == 1 else 0.0)

    server.routes["/s"] = reply
    db = tmp_path / "atlas.db"
    cfg = core_config(
        db,
        [source("s", url=server.url("/s"))],
        metrics_port=free_port_run(2),
        replicas=2,
        timeoutSeconds=30,
    )
    config = write_json(tmp_path / "core.json", cfg)  # leaseSeconds: the default 30
    a = start(config, 1, tmp_path / "core-1.log")
    procs = [a]
    try:
        wait_until(lambda: bool(arrivals), 30, "instance 1 to fetch")
        procs.append(start(config, 2, tmp_path / "core-2.log"))
        log_b = tmp_path / "core-2.log"
        wait_until(lambda: "replica 2/2" in log_b.read_text(), 30, "instance 2 to run")
        stopped = time.monotonic()
        a.send_signal(signal.SIGTERM)
        assert a.wait(timeout=10) == 0
        wait_until(lambda: query(db, "SELECT COUNT(*) FROM items") == [(2,)], 20, "the takeover")
    finally:
        stop_all(procs)
    assert len(arrivals) == 2
    # the grace (2 s), the cut (0.5 s), and one loop tick of the other instance
    assert arrivals[1] - stopped <= 2.0 + 0.5 + TICK_S + 1.0


def test_a_locked_database_delays_claims_without_breaking_the_loop(
    tmp_path: Path, server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.routes["/f"] = Reply(body=rss20(entries("f", 2)))
    db = tmp_path / "atlas.db"
    cfg = core_config(db, [source("f", url=server.url("/f"))])
    cfg["database"]["busyTimeoutSeconds"] = 0.1
    core = core_settings.from_dict(cfg, tmp_path / "core.json")
    worker = Worker(core.for_instance(1), open_store(db, 0.1), clock=FakeClock())
    other = sqlite3.connect(db, isolation_level=None)
    try:
        worker.start()
        other.execute("BEGIN IMMEDIATE")  # another writer holds the database
        assert worker.tick(0) == 0 and worker.storage_errors >= 1
        assert "database is locked" in caplog.text and "Traceback" not in caplog.text
        other.execute("COMMIT")
        worker.run_until_idle(10)
        assert query(db, "SELECT COUNT(*) FROM items") == [(2,)]
        assert worker.storage_errors == 0
    finally:
        other.close()
        worker.shutdown()
        worker.store.close()
