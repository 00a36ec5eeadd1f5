"""The full-text query: any text a user types becomes a MATCH expression that the
real FTS5 index (porter over unicode61, diacritics removed) accepts, or a clear
BadRequest; words match their stems, prefixes match across stemming."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlas.api.params import BadRequest, fts_query
from atlas.core.schema import MIGRATIONS
from atlas.db import migrate

DOCS = [
    ("Operating Atlas", "how operators run it"),
    ("Les cafés de Zürich", "crème brûlée"),
    ("Happy keepers", "lighthouses on the rocks"),
]


@pytest.fixture(scope="module")
def conn() -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    migrate(c, MIGRATIONS)  # the schema the worker creates, FTS triggers included
    for n, (title, text) in enumerate(DOCS, 1):
        c.execute(
            "INSERT INTO items (source, dedupe_key, title, text, ts, first_seen_at,"
            " updated_at, content_hash) VALUES ('s', ?, ?, ?, 0, 0, 0, '')",
            (f"k{n}", title, text),
        )
    yield c
    c.close()


def titles(conn: sqlite3.Connection, q: str) -> list[str]:
    rows = conn.execute(
        "SELECT i.title FROM items_fts JOIN items i ON i.id = items_fts.rowid"
        " WHERE items_fts MATCH ? ORDER BY i.id",
        (fts_query(q),),
    ).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("operations", ["Operating Atlas"]),
        ("operate", ["Operating Atlas"]),
        ("OPERATOR", ["Operating Atlas"]),
        ("keeper", ["Happy keepers"]),
        ("lighthouse rock", ["Happy keepers"]),
        ("cafe zurich", ["Les cafés de Zürich"]),
        ("creme brulee", ["Les cafés de Zürich"]),
        ('"operating atlas"', ["Operating Atlas"]),
        ('"atlas operating"', []),
        ("operat*", ["Operating Atlas"]),
        ("happy*", ["Happy keepers"]),
        ("light*", ["Happy keepers"]),
        ('"happy keep"*', ["Happy keepers"]),
        ("rock OR atlas", []),
    ],
)
def test_words_match_their_stems(conn: sqlite3.Connection, q: str, found: list[str]) -> None:
    assert titles(conn, q) == found


@pytest.mark.parametrize("q", ["", "   ", "***", '""', "-- ^ : ( )", "x" * 300, "a " * 20])
def test_unsearchable_text_is_a_clear_bad_request(q: str) -> None:
    with pytest.raises(BadRequest) as err:
        fts_query(q)
    assert err.value.param == "q"
    assert str(err.value).startswith("q: ")


@settings(max_examples=400, deadline=None)
@given(
    st.text(max_size=60)
    | st.text(alphabet='"*()^:-+{}, NEARORANDNOT_aéz\u0301\u00a0\x00\t', max_size=40)
)
def test_any_text_is_a_valid_query_or_a_bad_request(q: str) -> None:
    with sqlite3.connect(":memory:") as c:
        c.execute(
            "CREATE VIRTUAL TABLE t USING fts5(title, text,"
            " tokenize='porter unicode61 remove_diacritics 2')"
        )
        try:
            expression = fts_query(q)
        except BadRequest:
            return
        c.execute("SELECT * FROM t WHERE t MATCH ?", (expression,)).fetchall()
