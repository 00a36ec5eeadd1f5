"""Full-text search over real uvicorn and SQLite: words match their stems, accents
fold, the migration that turned stemming on rebuilds an existing index, and any
``q`` a user can send gets results or a clear 400 — never a 500 or a 503."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from atlas import db as atlas_db
from atlas.api.params import BadRequest
from atlas.api.reader import ItemFilter, Reader
from atlas.core.model import Item
from atlas.core.schema import FTS_TOKENIZE, LATEST, MIGRATIONS
from tests.support.api import Api
from tests.support.seeding import seed

ITEMS = [
    Item("Operating Atlas", "How operators run the platform", guid="1", published_at=1.0),
    Item("Les cafés de Zürich", "Crème brûlée and espresso", guid="2", published_at=2.0),
    Item("Lighthouse keepers", "Life on the rocks", guid="3", published_at=3.0),
]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    a = Api(tmp_path)
    seed(a.db, {"a": ITEMS}).close()
    yield a
    a.close()


def titles(api: Api, q: str) -> list[str]:
    resp = api.get("/v1/items", q=q)
    assert resp.status_code == 200, resp.text
    return [i["title"] for i in resp.json()["items"]]


def test_search_stems_and_folds(api: Api) -> None:
    assert titles(api, "operations") == ["Operating Atlas"]
    assert titles(api, "operator") == ["Operating Atlas"]
    assert titles(api, "operat*") == ["Operating Atlas"]
    assert titles(api, "keeper rock") == ["Lighthouse keepers"]
    assert titles(api, "cafe zurich") == ["Les cafés de Zürich"]
    assert titles(api, "CREME brulee") == ["Les cafés de Zürich"]


@pytest.mark.parametrize(
    "raw",
    [
        "%FF%FE",  # not UTF-8
        "%ED%A0%80",  # an encoded surrogate
        "%00",
        "%22",
        "%22%22%22*",
        "*",
        "(%29",
        "NEAR%28a+b%29",
        "a+OR+b+AND+NOT",
        "title%3Aoperating",
        "%5E%2B-%7B%7D",
        "x" * 400,
        "w+" * 30,
        "caf%C3%A9%CC%81",  # combining accent
        "%E2%80%8B",  # zero-width space only
    ],
)
def test_any_q_is_results_or_a_clear_400(api: Api, raw: str) -> None:
    resp = httpx.get(f"http://127.0.0.1:{api.port}/v1/items?q={raw}", timeout=10)
    assert resp.status_code in (200, 400), (raw, resp.status_code, resp.text)
    if resp.status_code == 400:
        error = resp.json()["error"]
        assert error["message"].startswith("q: "), error
    assert "Traceback" not in resp.text


def test_expression_fts5_rejects_is_a_bad_request_not_a_storage_error(api: Api) -> None:
    reader = Reader(api.db, 5)
    try:
        with pytest.raises(BadRequest, match=r"^q: cannot be searched \(unterminated string\)"):
            reader.items(ItemFilter(match='"unterminated AND ('))
        page, _ = reader.items(ItemFilter(match='"operations"'))  # the connection still serves
        assert [i["title"] for i in page] == ["Operating Atlas"]
    finally:
        reader.forget()


def test_migration_rebuilds_an_existing_index_with_stemming(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = atlas_db.connect(path, MIGRATIONS[:1])  # a database of the unstemmed schema
    old.execute(
        "INSERT INTO items (source, dedupe_key, title, text, ts, first_seen_at, updated_at,"
        " content_hash) VALUES ('s', 'k', 'Operating Atlas', 'crème', 0, 0, 0, 'h')"
    )
    match = "SELECT rowid FROM items_fts WHERE items_fts MATCH ?"
    assert old.execute(match, ('"operations"',)).fetchall() == []
    old.close()
    conn = atlas_db.connect(path, MIGRATIONS)  # what the worker does on start
    try:
        assert atlas_db.current_version(conn) == LATEST
        assert conn.execute(match, ('"operations"',)).fetchall() == [(1,)]
        assert conn.execute("INSERT INTO items_fts (items_fts) VALUES ('integrity-check')")
        conn.execute(
            "INSERT INTO items (source, dedupe_key, title, text, ts, first_seen_at, updated_at,"
            " content_hash) VALUES ('s', 'k2', 'Keepers', '', 0, 0, 0, 'h')"
        )
        assert conn.execute(match, ('"keeper"',)).fetchall() == [(2,)], "triggers recreated"
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'items_fts'").fetchone()
        assert f"tokenize='{FTS_TOKENIZE}'" in sql[0], "query and index tokenize alike"
    finally:
        conn.close()
    assert sqlite3.sqlite_version_info >= (3, 9)
