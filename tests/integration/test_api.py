"""The HTTP API served by real uvicorn on 127.0.0.1: routes, pagination, filters,
search, every error status, metrics, and readers during writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from atlas import db as atlas_db
from atlas import maintenance
from atlas.core.model import Item, Job, JobResult
from atlas.core.scheduler import Schedule
from atlas.core.schema import MIGRATIONS
from tests.support.api import PAGE, Api
from tests.support.seeding import items, rss_source, seed


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = Api(tmp_path)
    yield a
    a.close()


def assert_json_error(resp: httpx.Response, status: int, fragment: str = "") -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert "Traceback" not in resp.text
    body: dict[str, Any] = resp.json()
    assert body["error"]["status"] == status
    assert fragment in body["error"]["message"], body
    return body


# ---------------------------------------------------------------- health


def test_healthz_and_readyz(api: Api) -> None:
    assert api.get("/healthz").json()["status"] == "ok"
    missing = api.get("/readyz")
    assert missing.status_code == 503
    assert missing.json()["reason"].startswith("database unreachable")
    seed(api.db, {"a": items("a", 1)}).close()
    ready = api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_readyz_reports_pending_migrations_and_newer_schema(api: Api) -> None:
    conn = atlas_db.connect(api.db)  # an empty database: no migrations yet
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at REAL)"
    )
    resp = api.get("/readyz")
    assert resp.status_code == 503 and "migrations pending" in resp.json()["reason"]
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    resp = api.get("/readyz")
    assert resp.status_code == 503 and "newer than this API" in resp.json()["reason"]
    conn.close()


def test_readyz_reports_maintenance(api: Api) -> None:
    seed(api.db, {"a": items("a", 1)}).close()
    maintenance.turn_on(api.settings.maintenance_file, "disk swap", 600)
    resp = api.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["reason"] == "maintenance: disk swap"
    assert resp.json()["maintenance"]["until"] is not None
    maintenance.turn_off(api.settings.maintenance_file)
    assert api.get("/readyz").status_code == 200


# ---------------------------------------------------------------- sources


def test_sources_show_last_fetch_errors_and_circuit(api: Api) -> None:
    store = seed(api.db, {"good": items("g", 3), "bad": []})
    bad = rss_source("bad")
    store.apply(JobResult(Job(bad), "failed", 1_700_000_100.0, 1.0, http_status=500), Schedule())
    store.set_circuit("bad.example.invalid", "open", 1_700_000_100.0)
    store.close()
    sources = {s["name"]: s for s in api.get("/v1/sources").json()["sources"]}
    assert sources["good"]["items"] == 3
    assert sources["good"]["errorCount"] == 0
    assert sources["good"]["lastFetchAt"] == "2023-11-14T22:13:20Z"
    assert sources["good"]["circuit"] == "closed"
    assert sources["bad"]["errorCount"] == 1
    assert sources["bad"]["lastStatus"] == 500
    assert sources["bad"]["circuit"] == "open"
    assert sources["bad"]["deadLetterAttempts"] == 1


# ---------------------------------------------------------------- items


def walk(api: Api, max_pages: int = 100, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(max_pages):
        query = dict(params, **({"cursor": cursor} if cursor else {}))
        resp = api.get("/v1/items", **query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert len(body["items"]) <= int(params.get("limit", PAGE))
        out += body["items"]
        cursor = body["nextCursor"]
        if cursor is None:
            return out
    if max_pages < 100:
        return out
    raise AssertionError("pagination did not end")


def test_pagination_walks_everything_newest_first(api: Api) -> None:
    same_time = [replace(i, published_at=1_700_000_000.0) for i in items("tie", 7)]
    seed(api.db, {"a": items("a", 13), "b": same_time}).close()
    seen = walk(api, limit=4)
    assert len(seen) == 20
    assert len({i["id"] for i in seen}) == 20, "no item twice"
    keys = [(i["time"], i["id"]) for i in seen]
    assert keys == sorted(keys, reverse=True), "newest first, ties by id"
    first = api.get("/v1/items").json()
    assert len(first["items"]) == PAGE and first["nextCursor"]
    one = first["items"][0]
    assert set(one) >= {"id", "source", "title", "url", "excerpt", "time", "publishedAt"}


def test_filters_by_source_and_time(api: Api) -> None:
    seed(api.db, {"a": items("a", 10), "b": items("b", 10), "c": items("c", 10)}).close()
    only_a = walk(api, source="a")
    assert {i["source"] for i in only_a} == {"a"} and len(only_a) == 10
    two = api.client.get("/v1/items", params=[("source", "a"), ("source", "c"), ("limit", "10")])
    assert {i["source"] for i in two.json()["items"]} <= {"a", "c"}
    assert len(walk(api, source="nope")) == 0
    since = 1_700_000_000.0 + 3 * 60
    until = 1_700_000_000.0 + 6 * 60
    window = walk(api, source="a", since="2023-11-14T22:16:20Z", until=str(until))
    assert [i["title"] for i in window] == ["a title 5", "a title 4", "a title 3"]
    stamps = [datetime.fromisoformat(i["time"].replace("Z", "+00:00")).timestamp() for i in window]
    assert all(since <= t < until for t in stamps), "since inclusive, until exclusive"
    naive = walk(api, source="b", since="2023-11-14T22:21:20")
    assert [i["title"] for i in naive] == ["b title 9", "b title 8"]


def test_full_text_search(api: Api) -> None:
    seed(
        api.db,
        {
            "a": [
                Item("Lighthouse keepers", "Life on the rock", guid="1", published_at=1.0),
                Item("Café culture", "Espresso and crème", guid="2", published_at=2.0),
                Item("Harbour news", "The lighthouse was repainted", guid="3", published_at=3.0),
                Item("Ships", "exact phrase here, and more", guid="4", published_at=4.0),
            ]
        },
    ).close()

    def titles(q: str) -> list[str]:
        resp = api.get("/v1/items", q=q)
        assert resp.status_code == 200, resp.text
        return [i["title"] for i in resp.json()["items"]]

    assert titles("lighthouse") == ["Harbour news", "Lighthouse keepers"]
    assert titles("LIGHTHOUSE rock") == ["Lighthouse keepers"]
    assert titles("light*") == ["Harbour news", "Lighthouse keepers"]
    assert titles("cafe") == ["Café culture"], "diacritics folded"
    assert titles('"exact phrase"') == ["Ships"]
    assert titles('"phrase exact"') == []
    # FTS5 syntax in user input is only ever words
    for hostile in (
        "NEAR(life rock)",
        "title:lighthouse",
        'rock" OR "x',
        "-rock",
        "^life",
        "a AND",
    ):
        resp = api.get("/v1/items", q=hostile)
        assert resp.status_code == 200, (hostile, resp.text)
    assert titles("rock OR ships") == [], "OR is a word here, not an operator"
    combined = api.get("/v1/items", q="lighthouse", until="3")
    assert [i["title"] for i in combined.json()["items"]] == ["Lighthouse keepers"]


def test_search_pages_through_every_match(api: Api) -> None:
    seed(api.db, {"a": items("a", 13), "b": items("b", 12)}).close()
    found = walk(api, q="lighthouses", limit=4)
    assert len(found) == 25 and len({i["id"] for i in found}) == 25
    ids = [i["id"] for i in found]
    assert ids == sorted(ids, reverse=True), "search: newest stored first"
    only_b = walk(api, q="lighthouses", source="b", limit=5)
    assert {i["source"] for i in only_b} == {"b"} and len(only_b) == 12


def test_single_item_has_full_text(api: Api) -> None:
    long_text = "word " * 500
    seed(api.db, {"a": [Item("Long", long_text.strip(), guid="x", published_at=5.0)]}).close()
    listed = api.get("/v1/items").json()["items"][0]
    assert len(listed["excerpt"]) == 300
    full = api.get(f"/v1/items/{listed['id']}").json()
    assert full["text"] == long_text.strip() and full["title"] == "Long"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": "0"}, "limit"),
        ({"limit": str(PAGE + 1)}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "garbage"}, "invalid cursor"),
        ({"cursor": "c1.bm90LWpzb24"}, "invalid cursor"),
        ({"cursor": "c1.WyJ4IiwxXQ"}, "invalid cursor"),
        ({"since": "yesterday"}, "since: expected ISO 8601"),
        ({"until": "nan"}, "until: not a finite time"),
        ({"since": "2024-01-02", "until": "2024-01-01"}, "since: later than until"),
        ({"q": "x" * 300}, "q: longer than"),
        ({"q": "!!! ***"}, "q: no words"),
        ({"source": "Not A Name"}, "is not a source name"),
        ({"source": "x" * 64}, "source"),
        ({"limt": "5"}, "limt: unknown parameter"),
    ],
)
def test_bad_parameters_are_400(api: Api, params: dict[str, str], fragment: str) -> None:
    seed(api.db, {"a": items("a", 1)}).close()
    assert_json_error(api.get("/v1/items", **params), 400, fragment)


def test_not_found_method_and_unavailable(api: Api) -> None:
    assert_json_error(api.get("/v1/items/1"), 503, "database unavailable")
    assert_json_error(api.get("/v1/sources"), 503, "database unavailable")
    seed(api.db, {"a": items("a", 1)}).close()
    assert_json_error(api.get("/v1/items/999999"), 404, "no item 999999")
    assert_json_error(api.get("/v1/items/0"), 404)
    assert_json_error(api.get(f"/v1/items/{2**70}"), 404)
    assert_json_error(api.get("/v1/items/abc"), 400, "item_id")
    assert_json_error(api.get("/nowhere"), 404, "Not Found")
    assert_json_error(api.client.post("/v1/items"), 405, "Method Not Allowed")
    assert_json_error(api.client.delete("/v1/items/1"), 405)


def test_expensive_query_is_interrupted_not_left_to_stall(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(api.db, {"a": items("a", 3000)}).close()
    monkeypatch.setattr("atlas.api.reader.QUERY_BUDGET_S", 0.0)
    # every item matches the word, none is of that source: a walk of the whole index
    resp = api.get("/v1/items", q="lighthouses", source="elsewhere")
    assert_json_error(resp, 503, "database unavailable")
    assert "budget" in resp.json()["error"]["reason"]
    monkeypatch.setattr("atlas.api.reader.QUERY_BUDGET_S", 2.0)
    assert api.get("/v1/items", q="lighthouses", source="elsewhere").json()["items"] == []


def test_openapi_documents_the_item_parameters(api: Api) -> None:
    spec = api.get("/v1/openapi.json").json()
    names = {p["name"] for p in spec["paths"]["/v1/items"]["get"]["parameters"]}
    assert names == {"source", "since", "until", "q", "cursor", "limit"}


def test_request_metrics_by_route_template(api: Api) -> None:
    seed(api.db, {"a": items("a", 1)}).close()
    api.get("/v1/items/123456")
    api.get("/v1/items/654321")
    api.get("/v1/items", limit="0")
    api.get("/no/such/path")
    text = api.get("/metrics").text
    assert (
        'atlas_http_requests_total{method="GET",route="/v1/items/{item_id}",status="404"} 2.0'
        in text
    )
    assert 'atlas_http_requests_total{method="GET",route="/v1/items",status="400"} 1.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "/no/such/path" not in text
    assert (
        'atlas_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/items"'
        in text
    )


# ---------------------------------------------------------------- concurrency


def test_readers_during_writes(api: Api) -> None:
    store = seed(api.db, {"w": items("w", 50)})
    stop = threading.Event()
    written = [0]
    errors: list[BaseException] = []

    def writer() -> None:
        s = rss_source("w")
        n = 0
        try:
            while not stop.is_set():
                batch = tuple(items(f"more{n}", 20, start=1_800_000_000.0 + n * 3600))
                store.apply(JobResult(Job(s), "ok", time.time(), 0.1, items=batch), Schedule())
                written[0] += len(batch)
                n += 1
                time.sleep(0.005)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 3
        walks = 0
        while time.monotonic() < deadline:
            page = walk(api, max_pages=8, limit=PAGE)
            ids = [i["id"] for i in page]
            assert len(ids) == len(set(ids)), "a page walk never repeats an item"
            keys = [(i["time"], i["id"]) for i in page]
            assert keys == sorted(keys, reverse=True)
            assert api.get("/v1/items", q="lighthouses").status_code == 200
            assert api.get("/v1/sources").status_code == 200
            walks += 1
    finally:
        stop.set()
        thread.join()
        store.close()
    assert not errors, errors
    assert walks >= 2 and written[0] >= 100, (walks, written)


def test_database_schema_is_migrated_only_by_the_worker(api: Api) -> None:
    api.get("/v1/items")
    assert not api.db.exists(), "the API never creates the database"
    conn = atlas_db.connect(api.db, MIGRATIONS)
    conn.close()
    assert api.get("/v1/items").json() == {"items": [], "nextCursor": None}
