"""Read-only access to the content database for the API.

One connection per server thread, opened ``mode=rw`` but ``query_only`` (SQLite
needs write access to the WAL index even to read; the API never writes and never
creates or migrates the database — the worker owns the schema). A missing or
broken database is a ``StorageError``, which the app turns into a 503.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from atlas import db
from atlas.api.params import iso
from atlas.core.schema import LATEST
from atlas.errors import StorageError

EXCERPT_CHARS = 300


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
        try:
            return self.conn().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            self.forget()
            raise StorageError(f"database query failed: {exc}") from exc

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
                "url": url,
                "enabled": bool(enabled),
                "intervalSeconds": interval,
                "lastFetchAt": iso(last_fetch),
                "lastSuccessAt": iso(last_success),
                "lastStatus": last_status,
                "lastError": last_error,
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
        """A page of items, newest first, and the keyset of its last row if more follow."""
        where: list[str] = []
        params: list[Any] = []
        if f.sources:
            where.append(f"source IN ({','.join('?' * len(f.sources))})")
            params += f.sources
        if f.since is not None:
            where.append("ts >= ?")
            params.append(f.since)
        if f.until is not None:
            where.append("ts < ?")
            params.append(f.until)
        if f.match is not None:
            where.append("id IN (SELECT rowid FROM items_fts WHERE items_fts MATCH ?)")
            params.append(f.match)
        if f.after is not None:
            where.append("(ts, id) < (?, ?)")
            params += f.after
        sql = (
            "SELECT id, source, guid, url, title, substr(text, 1, ?), author, published_at, ts,"
            " first_seen_at, updated_at FROM items"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts DESC, id DESC LIMIT ?"
        rows = self.query(sql, [EXCERPT_CHARS, *params, f.limit + 1])
        more = len(rows) > f.limit
        rows = rows[: f.limit]
        page = [_item(row, excerpt=True) for row in rows]
        last = (rows[-1][8], rows[-1][0]) if more and rows else None
        return page, last

    def item(self, item_id: int) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT id, source, guid, url, title, text, author, published_at, ts,"
            " first_seen_at, updated_at FROM items WHERE id = ?",
            (item_id,),
        )
        return _item(rows[0], excerpt=False) if rows else None


def _item(row: Any, excerpt: bool) -> dict[str, Any]:
    item_id, source, guid, url, title, text, author, published, ts, first_seen, updated = row
    return {
        "id": item_id,
        "source": source,
        "guid": guid,
        "url": url,
        "title": title,
        ("excerpt" if excerpt else "text"): text,
        "author": author,
        "publishedAt": iso(published),
        "time": iso(ts),
        "firstSeenAt": iso(first_seen),
        "updatedAt": iso(updated),
    }
