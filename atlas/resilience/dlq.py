"""The dead-letter queue: fetches that still failed after their retries.

One open entry per source (table ``dead_letters`` of the content database): a new
failure of the same source bumps ``attempts`` and keeps the first failure time; a
successful fetch of the source — by the worker, ``atlas dlq retry`` or the
background sweep — resolves (deletes) it. Purging an entry forgets the failure
but never the source: the worker keeps scheduling it with its error backoff.

Every function takes an open connection; callers own the transaction (``purge``
is one transaction of its own). ``Selection`` is what an operator picks entries by
(``atlas dlq list|retry|purge``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from atlas.db import transaction
from atlas.errors import ConfigError

SWEEP_BASE_S = 300.0
SWEEP_CAP_S = 24 * 3600.0


@dataclass(frozen=True)
class DeadLetter:
    id: int
    source: str
    url: str | None
    error_kind: str  # "temporary" | "permanent"
    error: str
    attempts: int
    first_failed_at: float
    last_failed_at: float
    next_retry_at: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sweep_delay(attempts: int) -> float:
    """When the background sweep retries an entry next: 5 min doubling, capped at a day."""
    return min(SWEEP_CAP_S, SWEEP_BASE_S * 2.0 ** max(0, attempts - 1))


def record(
    conn: sqlite3.Connection,
    source: str,
    url: str | None,
    error_kind: str,
    error: str,
    now: float,
) -> int:
    """Add or bump the source's entry; returns its attempt count."""
    row = conn.execute("SELECT attempts FROM dead_letters WHERE source = ?", (source,)).fetchone()
    attempts = (row[0] if row else 0) + 1
    conn.execute(
        "INSERT INTO dead_letters (source, url, error_kind, error, attempts,"
        " first_failed_at, last_failed_at, next_retry_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (source) DO UPDATE SET url = excluded.url,"
        " error_kind = excluded.error_kind, error = excluded.error,"
        " attempts = excluded.attempts, last_failed_at = excluded.last_failed_at,"
        " next_retry_at = excluded.next_retry_at",
        (source, url, error_kind, error, attempts, now, now, now + sweep_delay(attempts)),
    )
    return attempts


def resolve(conn: sqlite3.Connection, source: str) -> bool:
    return conn.execute("DELETE FROM dead_letters WHERE source = ?", (source,)).rowcount > 0


_COLUMNS = (
    "id, source, url, error_kind, error, attempts, first_failed_at, last_failed_at, next_retry_at"
)


def entries(
    conn: sqlite3.Connection,
    ids: Sequence[int] = (),
    sources: Sequence[str] = (),
    due_at: float | None = None,
    failed_before: float | None = None,
) -> list[DeadLetter]:
    """Entries matching every given filter (none given: all), oldest failure first."""
    where: list[str] = []
    params: list[Any] = []
    if ids:
        where.append(f"id IN ({','.join('?' * len(ids))})")
        params += list(ids)
    if sources:
        where.append(f"source IN ({','.join('?' * len(sources))})")
        params += list(sources)
    if due_at is not None:
        where.append("next_retry_at <= ?")
        params.append(due_at)
    if failed_before is not None:
        where.append("last_failed_at < ?")
        params.append(failed_before)
    sql = f"SELECT {_COLUMNS} FROM dead_letters"  # noqa: S608 - fixed column list
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = conn.execute(sql + " ORDER BY first_failed_at, id", params).fetchall()
    return [DeadLetter(*row) for row in rows]


@dataclass(frozen=True)
class Selection:
    """Dead letters by id, by source, every one, and/or last failed longer ago than."""

    ids: tuple[int, ...] = ()
    sources: tuple[str, ...] = ()
    everything: bool = False
    older_than_s: float | None = None

    @property
    def empty(self) -> bool:
        """Nothing was named: a verb that changes entries must not take them all."""
        return not (self.ids or self.sources or self.everything or self.older_than_s is not None)


def select(conn: sqlite3.Connection, chosen: Selection, now: float) -> list[DeadLetter]:
    """The entries ``chosen`` names, oldest failure first; ConfigError naming any id
    that is not a dead letter."""
    failed_before = now - chosen.older_than_s if chosen.older_than_s is not None else None
    found = entries(conn, chosen.ids, chosen.sources, failed_before=failed_before)
    missing = sorted(set(chosen.ids) - {e.id for e in found})
    if missing:
        raise ConfigError(f"no dead letter with id {', '.join(map(str, missing))}")
    return found


def purge(conn: sqlite3.Connection, chosen: Selection, now: float) -> tuple[int, list[DeadLetter]]:
    """Forget the chosen entries (their sources stay scheduled), in one transaction:
    (how many were removed, the entries)."""
    with transaction(conn):
        found = select(conn, chosen, now)
        return delete(conn, [e.id for e in found]), found


def delete(conn: sqlite3.Connection, ids: Sequence[int]) -> int:
    if not ids:
        return 0
    placeholders = ",".join("?" * len(ids))
    return conn.execute(
        f"DELETE FROM dead_letters WHERE id IN ({placeholders})",  # noqa: S608
        list(ids),
    ).rowcount


def size(conn: sqlite3.Connection, sources: Sequence[str] | None = None) -> int:
    """Open entries (of ``sources`` when given: one replica's share)."""
    if sources is None:
        return int(conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0])
    if not sources:
        return 0
    placeholders = ",".join("?" * len(sources))
    return int(
        conn.execute(
            f"SELECT COUNT(*) FROM dead_letters WHERE source IN ({placeholders})",  # noqa: S608
            list(sources),
        ).fetchone()[0]
    )
