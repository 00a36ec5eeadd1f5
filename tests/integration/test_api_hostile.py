"""The API under hostile or unlucky requests (issue 12): cursors out of SQLite's
range, a corrupted database, and queries that take long while probes must answer."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atlas.api.params import encode_cursor
from tests.integration.test_api import assert_json_error
from tests.support.api import Api
from tests.support.seeding import items, seed

HEALTH_S = 1.0  # the promise is 100 ms; this leaves room for a busy shared machine


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = Api(tmp_path)
    yield a
    a.close()


def test_a_cursor_id_beyond_sqlite_integers_is_a_400(api: Api) -> None:
    seed(api.db, {"a": items("a", 3)}).close()
    for item_id in (2**63, 2**64 + 5, 0, -1):
        resp = api.get("/v1/items", cursor=encode_cursor(1_700_000_000.0, item_id))
        assert_json_error(resp, 400, "invalid cursor")
    assert api.get("/healthz").status_code == 200


def test_a_corrupted_database_is_a_503_everywhere_not_a_500(api: Api) -> None:
    seed(api.db, {"a": items("a", 3)}).close()
    for suffix in ("-wal", "-shm"):
        Path(f"{api.db}{suffix}").unlink(missing_ok=True)
    api.db.write_bytes(b"this is not a database, it was overwritten\n" * 200)
    for path in ("/v1/items", "/v1/sources", "/v1/items/1", "/v1/items"):
        body = assert_json_error(api.get(path), 503, "database unavailable")
        assert "not a database" in body["error"]["reason"]
    assert api.get("/readyz").status_code == 503
    assert api.get("/healthz").status_code == 200


def _lock_exclusively(db: Path) -> sqlite3.Connection:
    """A writer holding the database so that readers wait their busy timeout (5 s)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    conn.execute("BEGIN EXCLUSIVE")
    conn.execute("DELETE FROM items WHERE id < 0")
    return conn


def test_health_answers_while_queries_wait_on_the_database(api: Api) -> None:
    """A query stuck in SQLite (here: waiting on a lock) runs in a worker thread; on
    the event loop it held /healthz for the whole busy timeout."""
    seed(api.db, {"a": items("a", 3)}).close()
    lock = _lock_exclusively(api.db)
    answers: list[int] = []
    stuck = [
        threading.Thread(target=lambda p=p: answers.append(api.get(p).status_code))
        for p in ("/v1/items", "/v1/sources", "/readyz")
    ]
    try:
        for t in stuck:
            t.start()
        time.sleep(0.3)  # the queries are in SQLite's busy wait now
        with httpx.Client(base_url=f"http://127.0.0.1:{api.port}", timeout=10) as probe:
            for _ in range(3):
                started = time.monotonic()
                assert probe.get("/healthz").status_code == 200
                assert time.monotonic() - started < HEALTH_S
    finally:
        lock.rollback()
        lock.close()
        for t in stuck:
            t.join(15)
    assert sorted(answers) == [200, 200, 200], "each went on once the lock was gone"
    assert api.get("/v1/items").status_code == 200
