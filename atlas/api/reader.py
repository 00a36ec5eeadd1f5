"""Read-only access to the content database for the API.

One connection per server thread, opened ``mode=rw`` but ``query_only`` (SQLite
needs write access to the WAL index even to read; the API never writes and never
creates or migrates the database — the worker owns the schema). A missing or
broken database is a ``StorageError``, which the app turns into a 503.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from atlas import db
from atlas.api.params import BadRequest, iso
from atlas.core.schema import LATEST
from atlas.errors import StorageError

EXCERPT_CHARS = 300
_SEARCH_ERRORS = ("fts5:", "unterminated string", "unknown special query")
QUERY_BUDGET_S = 2.0  # a query running longer is interrupted (it would hold a query thread)


# "scheme://user:password@" in a URL: stored by an older Atlas, never shown
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@]*@")


def without_userinfo(text: str | None) -> str | None:
    """``text`` with the credentials of every URL in it removed."""
    return _USERINFO.sub(r"\1", text) if text else text


@dataclass(frozen=True)
class ItemFilter:
    sources: tuple[str, ...] = ()
    since: float | None = None  # inclusive
    until: float | None = None  # exclusive
    match: str | None = None  # an FTS5 expression built by params.fts_query
    after: tuple[float, int] | None = None  # keyset: (ts, id) of the previous page's last
    limit: int = 100


class Reader:
    def __init__(self, path: Path, busy_timeout_s: float) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()

    def _open(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise StorageError(f"database {self.path} does not exist (has atlas-core run yet?)")
        try:
            conn = sqlite3.connect(
                f"file:{quote(str(self.path))}?mode=rw",
                uri=True,
                timeout=self.busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA query_only=1")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {self.path}: {exc}") from exc
        return conn

    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def query(self, sql: str, params: Any = ()) -> list[Any]:
        conn = self.conn()
        budget = QUERY_BUDGET_S
        deadline = time.monotonic() + budget
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            rows = conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            conn.set_progress_handler(None, 0)  # before forget() closes the connection
            if "interrupted" in str(exc):
                raise StorageError(
                    f"query exceeded its {budget:g}s budget; narrow the request"
                ) from exc
            if "MATCH" in sql and str(exc).startswith(_SEARCH_ERRORS):  # the text, not the db
                raise BadRequest(
                    f'q: cannot be searched ({exc}); search for words, "a phrase" or a prefix*',
                    "q",
                ) from exc
            self.forget()
            raise StorageError(f"database query failed: {exc}") from exc
        conn.set_progress_handler(None, 0)
        return rows

    def forget(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    # ---- checks

    def schema_version(self) -> int:
        try:
            return db.current_version(self.conn())
        except sqlite3.Error as exc:
            self.forget()
            raise StorageError(f"database query failed: {exc}") from exc

    def readiness(self) -> tuple[bool, str]:
        """(ready, reason): the database answers and its schema is what this API knows."""
        try:
            version = self.schema_version()
        except StorageError as exc:
            return False, f"database unreachable: {exc}"
        if version < LATEST:
            return False, f"migrations pending: database at version {version}, API needs {LATEST}"
        if version > LATEST:
            return False, f"database at version {version} is newer than this API ({LATEST})"
        return True, "ok"

    # ---- sources

    def sources(self) -> list[dict[str, Any]]:
        counts = dict(self.query("SELECT source, COUNT(*) FROM items GROUP BY source"))
        rows = self.query(
            "SELECT s.name, s.type, s.title, s.url, s.host, s.enabled, s.interval_s,"
            " s.last_fetch_at, s.last_success_at, s.last_status, s.last_error,"
            " s.consecutive_errors, s.next_check_at, COALESCE(h.circuit, 'closed'),"
            " d.attempts"
            " FROM sources s LEFT JOIN hosts h ON h.host = s.host"
            " LEFT JOIN dead_letters d ON d.source = s.name"
            " WHERE s.removed_at IS NULL ORDER BY s.name"
        )
        return [
            {
                "name": name,
                "type": kind,
                "title": title,
                "url": without_userinfo(url),
                "enabled": bool(enabled),
                "intervalSeconds": interval,
                "lastFetchAt": iso(last_fetch),
                "lastSuccessAt": iso(last_success),
                "lastStatus": last_status,
                "lastError": without_userinfo(last_error),
                "errorCount": errors,
                "nextCheckAt": iso(next_check) if next_check else None,
                "circuit": circuit if host else None,
                "deadLetterAttempts": dlq_attempts,
                "items": counts.get(name, 0),
            }
            for (
                name,
                kind,
                title,
                url,
                host,
                enabled,
                interval,
                last_fetch,
                last_success,
                last_status,
                last_error,
                errors,
                next_check,
                circuit,
                dlq_attempts,
            ) in rows
        ]

    # ---- items

    def items(self, f: ItemFilter) -> tuple[list[dict[str, Any]], tuple[float, int] | None]:
        """A page of items and the keyset of its last row if more follow.

        Browsing is newest first by item time (``ts``, then id). A search (``match``)
        is newest *stored* first (id): FTS5 then walks its index backwards and stops
        at the page's end, so a word found in most items costs no more than a rare
        one — ordering by item time would have to collect every match first."""
        where: list[str] = []
        params: list[Any] = []
        if f.sources:
            where.append(f"i.source IN ({','.join('?' * len(f.sources))})")
            params += f.sources
        if f.since is not None:
            where.append("i.ts >= ?")
            params.append(f.since)
        if f.until is not None:
            where.append("i.ts < ?")
            params.append(f.until)
        columns = (
            f"i.id, i.source, i.guid, i.url, i.title, substr(i.text, 1, ?), i.author, {_TIMES}"
        )
        if f.match is not None:
            where.insert(0, "items_fts MATCH ?")
            params.insert(0, f.match)
            if f.after is not None:
                where.append("items_fts.rowid < ?")
                params.append(f.after[1])
            sql = (
                f"SELECT {columns} FROM items_fts CROSS JOIN items i ON i.id = items_fts.rowid"  # noqa: S608
                f" WHERE {' AND '.join(where)} ORDER BY items_fts.rowid DESC LIMIT ?"
            )
        else:
            if f.after is not None:
                where.append("(i.ts, i.id) < (?, ?)")
                params += f.after
            sql = f"SELECT {columns} FROM items i"  # noqa: S608 - fixed fragments only
            if where:
                sql += " WHERE " + " AND ".join(where)
            sql += " ORDER BY i.ts DESC, i.id DESC LIMIT ?"
        rows = self.query(sql, [EXCERPT_CHARS, *params, f.limit + 1])
        more = len(rows) > f.limit
        rows = rows[: f.limit]
        page = [_item(row, excerpt=True) for row in rows]
        last = (rows[-1][-1], rows[-1][0]) if more and rows else None
        return page, last

    def item(self, item_id: int) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT i.id, i.source, i.guid, i.url, i.title, i.text, i.author,"  # noqa: S608
            f" {_TIMES} FROM items i WHERE i.id = ?",
            (item_id,),
        )
        return _item(rows[0], excerpt=False) if rows else None


def _utc(column: str) -> str:
    """An epoch column as ISO 8601 UTC text, formatted by SQLite (far cheaper than Python)."""
    return f"strftime('%Y-%m-%dT%H:%M:%SZ', {column}, 'unixepoch')"


# the four times as text, then the raw ts (the keyset of the cursor)
_TIMES = ", ".join(
    [*(_utc(f"i.{c}") for c in ("published_at", "ts", "first_seen_at", "updated_at")), "i.ts"]
)


def _item(row: Any, excerpt: bool) -> dict[str, Any]:
    item_id, source, guid, url, title, text, author, published, ts, first_seen, updated, _ = row
    return {
        "id": item_id,
        "source": source,
        "guid": guid,
        "url": url,
        "title": title,
        ("excerpt" if excerpt else "text"): text,
        "author": author,
        "publishedAt": published,
        "time": ts,
        "firstSeenAt": first_seen,
        "updatedAt": updated,
    }
