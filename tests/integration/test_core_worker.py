"""The worker loop in-process against a real HTTP server: storage, dedupe,
conditional GET, error backoff, dead letters, circuit breaking, replicas sharing sources."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from atlas.core import settings as core_settings
from atlas.core.store import open_store
from atlas.core.worker import Worker
from atlas.resilience import dlq
from atlas.resilience.breaker import BreakerPolicy
from seams.testing import FakeClock
from tests.support.feeds import (
    Entry,
    FeedServer,
    Reply,
    Seen,
    atom,
    core_config,
    entries,
    rss10,
    rss20,
    source,
)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as srv:
        yield srv


class Harness:
    def __init__(self, tmp_path: Path, sources: list[dict[str, Any]], **fetch: Any) -> None:
        self.db = tmp_path / "atlas.db"
        self.clock = FakeClock()
        self.config = core_config(self.db, sources, **fetch)
        self.workers: list[Worker] = []

    def worker(self, instance: int = 1, **policies: Any) -> Worker:
        core = replace(core_settings.from_dict(self.config, Path("core.json")), **policies)
        settings = core.for_instance(instance)
        w = Worker(settings, open_store(self.db, 5), clock=self.clock, rand=lambda: 0.0)
        w.start()
        self.workers.append(w)
        return w

    def run(self, w: Worker) -> None:
        w.run_until_idle(20)

    def rows(self, sql: str, *params: Any) -> list[Any]:
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def count(self, src: str | None = None) -> int:
        if src is None:
            return int(self.rows("SELECT COUNT(*) FROM items")[0][0])
        return int(self.rows("SELECT COUNT(*) FROM items WHERE source = ?", src)[0][0])

    def close(self) -> None:
        for w in self.workers:
            w.shutdown()
            w.store.close()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def make(sources: list[dict[str, Any]], **fetch: Any) -> Harness:
        h = Harness(tmp_path, sources, **fetch)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()


def metric(w: Worker, name: str) -> str:
    text = generate_latest(w.metrics.registry).decode()
    return "\n".join(line for line in text.splitlines() if line.startswith(name))


def test_ingests_every_source_type(server: FeedServer, harness: Any) -> None:
    server.routes["/rss2"] = Reply(body=rss20(entries("r2", 4)))
    server.routes["/rss1"] = Reply(body=rss10(entries("r1", 3)))
    server.routes["/atom"] = Reply(body=atom(entries("at", 2)))
    server.routes["/page"] = Reply(
        body=b"<title>P</title><p>page text</p>", headers={"Content-Type": "text/html"}
    )
    h = harness(
        [
            source("rss2", url=server.url("/rss2")),
            source("rss1", url=server.url("/rss1")),
            source("atom", url=server.url("/atom")),
            source("page", "url", url=server.url("/page")),
            source("motd", "text", text="hello there", title="MOTD"),
            source("guide", "file", text="# Guide", path="content/guide.md"),
        ]
    )
    w = h.worker()
    h.run(w)
    counts = dict(h.rows("SELECT source, COUNT(*) FROM items GROUP BY source"))
    assert counts == {"rss2": 4, "rss1": 3, "atom": 2, "page": 1, "motd": 1, "guide": 1}
    assert h.rows("SELECT title, text FROM items WHERE source = 'motd'") == [
        ("MOTD", "hello there")
    ]
    assert 'atlas_ingest_items_total{result="new",source="rss2"} 4.0' in metric(
        w, "atlas_ingest_items_total"
    )
    hits = h.rows("SELECT rowid FROM items_fts WHERE items_fts MATCH 'lighthouses'")
    assert len(hits) == 9, "full-text index covers the feed items"


def test_etag_304_stores_nothing_new(server: FeedServer, harness: Any) -> None:
    def feed(seen: Seen) -> Reply:
        if seen.headers.get("if-none-match") == '"v1"':
            return Reply(304, headers={"ETag": '"v1"'})
        return Reply(body=rss20(entries("e", 3)), headers={"ETag": '"v1"'})

    server.routes["/feed"] = feed
    h = harness([source("etag", url=server.url("/feed"))])
    w = h.worker()
    h.run(w)
    before = h.rows("SELECT id, updated_at FROM items ORDER BY id")
    h.clock.advance(301)
    h.run(w)
    assert [s.headers.get("if-none-match") for s in server.requests_to("/feed")] == [None, '"v1"']
    assert h.rows("SELECT id, updated_at FROM items ORDER BY id") == before
    assert h.rows("SELECT last_status, etag FROM sources") == [(304, '"v1"')]
    assert 'status="not_modified"} 1.0' in metric(w, "atlas_ingest_fetches_total")


def test_last_modified_304_stores_nothing_new(server: FeedServer, harness: Any) -> None:
    stamp = "Mon, 01 Jan 2024 00:00:00 GMT"

    def feed(seen: Seen) -> Reply:
        if seen.headers.get("if-modified-since") == stamp:
            return Reply(304)
        return Reply(body=rss20(entries("m", 2)), headers={"Last-Modified": stamp})

    server.routes["/feed"] = feed
    h = harness([source("lm", url=server.url("/feed"))])
    w = h.worker()
    h.run(w)
    h.clock.advance(301)
    h.run(w)
    assert [s.headers.get("if-modified-since") for s in server.requests_to("/feed")] == [
        None,
        stamp,
    ]
    assert h.count() == 2
    assert h.rows("SELECT last_status, last_modified FROM sources") == [(304, stamp)]


def test_dedupe_across_restarts_and_update_in_place(server: FeedServer, harness: Any) -> None:
    first = entries("d", 5)
    server.routes["/guid"] = Reply(body=rss20(first))
    no_guid = [Entry(e.title, link=e.link, text=e.text) for e in first]
    server.routes["/noguid"] = Reply(body=rss20(no_guid))
    h = harness(
        [source("guid", url=server.url("/guid")), source("noguid", url=server.url("/noguid"))]
    )
    w = h.worker()
    h.run(w)
    ids = dict(h.rows("SELECT dedupe_key, id FROM items WHERE source = 'guid'"))
    w.shutdown()
    w.store.close()
    h.workers.remove(w)

    changed = [*first[:4], Entry("d item 4", first[4].link, "d-4", "rewritten lighthouse text")]
    changed += entries("new", 2, start=1_800_000_000.0)
    server.routes["/guid"] = Reply(body=rss20(changed))
    server.routes["/noguid"] = Reply(body=rss20([*no_guid, Entry("extra", "http://x.invalid/e")]))
    h.clock.advance(301)
    w2 = h.worker()  # a restarted worker on the same database
    h.run(w2)
    assert h.count("guid") == 7
    assert h.count("noguid") == 6
    after = dict(h.rows("SELECT dedupe_key, id FROM items WHERE source = 'guid'"))
    assert {k: after[k] for k in ids} == ids, "existing items keep their ids"
    assert h.rows("SELECT text FROM items WHERE dedupe_key = 'guid:d-4'") == [
        ("rewritten lighthouse text",)
    ]
    found = h.rows(
        "SELECT i.dedupe_key FROM items_fts f JOIN items i ON i.id = f.rowid"
        " WHERE items_fts MATCH 'rewritten'"
    )
    assert found == [("guid:d-4",)], "the search index follows the update"
    items_metric = metric(w2, "atlas_ingest_items_total")
    assert 'atlas_ingest_items_total{result="new",source="guid"} 2.0' in items_metric
    assert 'atlas_ingest_items_total{result="updated",source="guid"} 1.0' in items_metric
    assert 'atlas_ingest_items_total{result="unchanged",source="guid"} 4.0' in items_metric


def test_failing_source_backs_off_dead_letters_and_recovers(
    server: FeedServer, harness: Any
) -> None:
    server.routes["/down"] = Reply(500, b"broken")
    h = harness([source("down", url=server.url("/down"), intervalSeconds=100)])
    w = h.worker(breaker=BreakerPolicy(failure_threshold=100))
    delays = []
    for _ in range(3):
        h.run(w)
        fetched, next_at, errors = h.rows(
            "SELECT last_fetch_at, next_check_at, consecutive_errors FROM sources"
        )[0]
        delays.append((errors, next_at - fetched))
        h.clock.advance(next_at - h.clock.wall())
    assert delays == [(1, 100.0), (2, 200.0), (3, 400.0)]
    assert len(server.requests_to("/down")) == 9, "3 attempts per fetch (retries)"
    (entry,) = dlq.entries(w.store.conn)
    assert (entry.source, entry.attempts, entry.error_kind) == ("down", 3, "temporary")
    assert "HTTP 500" in entry.error
    assert "atlas_dlq_size 1.0" in metric(w, "atlas_dlq_size")
    assert 'atlas_ingest_source_errors{source="down"} 3.0' in metric(
        w, "atlas_ingest_source_errors"
    )
    server.routes["/down"] = Reply(body=rss20(entries("up", 2)))
    h.run(w)
    assert h.count("down") == 2
    assert h.rows("SELECT consecutive_errors, last_error FROM sources") == [(0, None)]
    assert dlq.entries(w.store.conn) == []
    assert "atlas_dlq_size 0.0" in metric(w, "atlas_dlq_size")


def test_permanent_failures_are_not_retried(server: FeedServer, harness: Any) -> None:
    server.routes["/html"] = Reply(body=b"<html><body>not a feed</body></html>")
    server.routes["/gone"] = Reply(404, b"no")
    server.routes["/loop"] = Reply(302, headers={"Location": "/loop"})
    h = harness(
        [
            source("html", url=server.url("/html")),
            source("gone", url=server.url("/gone")),
            source("loop", url=server.url("/loop")),
        ]
    )
    w = h.worker()
    h.run(w)
    assert len(server.requests_to("/html")) == 1
    assert len(server.requests_to("/gone")) == 1
    assert len(server.requests_to("/loop")) == 4, "first request + 3 redirects, once"
    kinds = {e.source: (e.error_kind, e.error) for e in dlq.entries(w.store.conn)}
    assert kinds["html"][0] == "permanent" and "not an RSS or Atom feed" in kinds["html"][1]
    assert kinds["gone"][0] == "permanent" and "HTTP 404" in kinds["gone"][1]
    assert "redirects" in kinds["loop"][1]
    assert h.rows("SELECT name FROM sources WHERE next_check_at > 0 ORDER BY name") == [
        ("gone",),
        ("html",),
        ("loop",),
    ], "failing sources stay scheduled"


def test_retry_after_sets_the_next_check(server: FeedServer, harness: Any) -> None:
    server.routes["/busy"] = Reply(429, b"later", {"Retry-After": "3600"})
    h = harness([source("busy", url=server.url("/busy"), intervalSeconds=60)])
    w = h.worker()
    h.run(w)
    assert len(server.requests_to("/busy")) == 1, "a long Retry-After is not waited out"
    fetched, next_at = h.rows("SELECT last_fetch_at, next_check_at FROM sources")[0]
    assert next_at - fetched == 3600.0


def test_short_retry_after_is_waited_out(server: FeedServer, harness: Any) -> None:
    calls = []

    def flaky(seen: Seen) -> Reply:
        calls.append(seen)
        if len(calls) == 1:
            return Reply(503, b"", {"Retry-After": "0"})
        return Reply(body=rss20(entries("ok", 1)))

    server.routes["/f"] = flaky
    h = harness([source("flaky", url=server.url("/f"))])
    w = h.worker()
    h.run(w)
    assert h.count() == 1 and len(calls) == 2


def test_cache_control_stretches_the_next_check(server: FeedServer, harness: Any) -> None:
    server.routes["/f"] = Reply(body=rss20([]), headers={"Cache-Control": "max-age=7200"})
    h = harness([source("cached", url=server.url("/f"), intervalSeconds=600)])
    h.run(h.worker())
    fetched, next_at = h.rows("SELECT last_fetch_at, next_check_at FROM sources")[0]
    assert next_at - fetched == 7200.0


def test_circuit_opens_holds_back_the_host_and_closes_after_a_trial(
    server: FeedServer, harness: Any
) -> None:
    for name in ("a", "b", "c"):
        server.routes[f"/{name}"] = Reply(500, b"down")
    h = harness([source(n, url=server.url(f"/{n}")) for n in ("a", "b", "c")], concurrency=1)
    w = h.worker()
    h.run(w)
    host = server.host
    assert len(server.seen) == 5, "a: 3 attempts, b: 2 more open the circuit"
    assert h.rows("SELECT circuit FROM hosts WHERE host = ?", host) == [("open",)]
    assert f'atlas_circuit_state{{host="{host}"}} 2.0' in metric(w, "atlas_circuit_state")
    assert "atlas_ingest_backlog 1.0" in metric(w, "atlas_ingest_backlog")
    errors = dict(h.rows("SELECT name, consecutive_errors FROM sources"))
    assert errors == {"a": 1, "b": 1, "c": 0}, "c was held back, not failed"

    for name in ("a", "b", "c"):
        server.routes[f"/{name}"] = Reply(body=rss20(entries(name, 1)))
    h.clock.advance(60)  # the open period
    w.tick(0)
    assert h.rows("SELECT circuit FROM hosts WHERE host = ?", host) == [("half_open",)]
    h.run(w)
    assert h.rows("SELECT circuit FROM hosts WHERE host = ?", host) == [("closed",)]
    assert h.count("c") == 1
    assert f'atlas_circuit_state{{host="{host}"}} 0.0' in metric(w, "atlas_circuit_state")


def test_replicas_share_the_sources_through_leases(server: FeedServer, harness: Any) -> None:
    names = [f"s{i}" for i in range(20)]
    for n in names:
        server.routes[f"/{n}"] = Reply(body=rss20(entries(n, 1)), delay_s=0.05)
    h = harness([source(n, url=server.url(f"/{n}")) for n in names])
    h.config["replicas"] = 3
    h.config["metrics"]["port"] = 9100
    core = core_settings.from_dict(h.config, Path("core.json"))
    shares = [core.for_instance(i) for i in (1, 2, 3)]
    assert [s.metrics_port for s in shares] == [9100, 9101, 9102]
    assert all(len(share.sources) == 20 for share in shares), "any replica may fetch any"
    workers = [h.worker(i) for i in (1, 2, 3)]
    stored = [0, 0, 0]
    for _ in range(400):
        for i, w in enumerate(workers):
            w.tick(0.01)
            stored[i] = w.stored_batches
        if h.count() == 20 and not any(w.in_flight for w in workers):
            break
    assert h.count() == 20
    assert all(len(server.requests_to(f"/{n}")) == 1 for n in names), "each fetched once"
    assert sum(stored) == 20 and all(stored), f"each replica took a share: {stored}"
    assert h.rows("SELECT COUNT(*) FROM source_leases WHERE holder IS NOT NULL") == [(0,)]


def test_removed_sources_are_marked_not_deleted(server: FeedServer, harness: Any) -> None:
    h = harness([source("keep", "text", text="a"), source("drop", "text", text="b")])
    h.run(h.worker())
    h.config["sources"] = [source("keep", "text", text="a")]
    h.worker()
    rows = dict(h.rows("SELECT name, removed_at IS NOT NULL FROM sources"))
    assert rows == {"keep": 0, "drop": 1}
    assert h.count("drop") == 1


def test_unchanged_body_skips_parsing_and_storing(server: FeedServer, harness: Any) -> None:
    server.routes["/f"] = Reply(body=rss20(entries("u", 2)))
    h = harness([source("same", url=server.url("/f"))])
    w = h.worker()
    h.run(w)
    h.clock.advance(301)
    h.run(w)
    assert 'source="same",status="unchanged"} 1.0' in metric(w, "atlas_ingest_fetches_total")
    assert h.count() == 2


def test_entries_without_title_are_stored_and_empty_ones_counted(
    server: FeedServer, harness: Any
) -> None:
    items = "<item><description>only a description</description></item>" * 2
    items += "<item><description>another one</description></item><item><author>x</author></item>"
    body = rss20([Entry("titled", guid="g")]).replace(b"</channel>", items.encode() + b"</channel>")
    server.routes["/feed"] = Reply(body=body)
    h = harness([source("bare", url=server.url("/feed"))])
    w = h.worker()
    h.run(w)
    rows = h.rows("SELECT title, text, dedupe_key FROM items ORDER BY id")
    assert [(t, x) for t, x, _ in rows] == [
        ("titled", ""),
        ("", "only a description"),
        ("", "another one"),
    ]
    assert rows[1][2].startswith("hash:")
    assert 'atlas_ingest_entries_skipped_total{source="bare"} 1.0' in metric(
        w, "atlas_ingest_entries_skipped_total"
    )
