"""The worker's side of the content database: source bookkeeping and items.

Each fetched batch — items, the source's validators and schedule, its error count
and its dead letter — is written in ONE ``BEGIN IMMEDIATE`` transaction
(``apply``). A worker killed at any moment therefore leaves either the whole
batch or none of it; the source stays due until its batch is committed, and
items are unique per (source, dedupe key), so the refetch after a restart adds
nothing twice. An item whose content changed is updated in place.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlas import db
from atlas.core import leases
from atlas.core.model import Item, Job, JobResult
from atlas.core.scheduler import Schedule
from atlas.core.schema import MIGRATIONS
from atlas.core.settings import SourceSettings
from atlas.errors import PermanentFailure, StorageError
from atlas.resilience import dlq

_CHUNK = 500


@dataclass(frozen=True)
class Counts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True)
class Applied:
    counts: Counts
    errors: int  # the source's consecutive errors after this result
    next_check_at: float
    dead_lettered: bool
    resolved: bool = False  # a dead letter of the source was resolved


def open_store(path: Path, busy_timeout_s: float) -> Store:
    return Store(db.connect(path, MIGRATIONS, busy_timeout_s))


def open_existing_store(path: Path, busy_timeout_s: float) -> Store:
    """The store of a database the worker has created (what the operator verbs use):
    StorageError rather than a new, empty database when there is none yet."""
    if not path.exists():
        raise StorageError(f"database {path} does not exist (has atlas-core run yet?)")
    return open_store(path, busy_timeout_s)


def _chunks(values: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class Store:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def close(self) -> None:
        self.conn.close()

    @property
    def path(self) -> str:
        """The database file (for another connection to it)."""
        return str(self.conn.execute("PRAGMA database_list").fetchone()[2])

    # ---- sources

    def sync_sources(
        self, mine: Sequence[SourceSettings], configured: Iterable[str], now: float
    ) -> None:
        """Record this replica's sources; mark sources gone from the config as removed."""
        names = set(configured)
        try:
            with db.transaction(self.conn):
                for s in mine:
                    self.conn.execute(
                        "INSERT INTO sources (name, type, title, url, host, enabled, interval_s)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                        " type = excluded.type, title = excluded.title, url = excluded.url,"
                        " host = excluded.host, enabled = excluded.enabled,"
                        " interval_s = excluded.interval_s, removed_at = NULL,"
                        " etag = CASE WHEN sources.url IS excluded.url THEN etag END,"
                        " last_modified = CASE WHEN sources.url IS excluded.url"
                        "   THEN last_modified END,"
                        " body_sha256 = CASE WHEN sources.url IS excluded.url"
                        "   AND sources.type = excluded.type THEN body_sha256 END",
                        (s.name, s.type, s.title, s.url, s.host, int(s.enabled), s.interval_s),
                    )
                    self.conn.execute(
                        "INSERT INTO source_leases (source) VALUES (?) ON CONFLICT DO NOTHING",
                        (s.name,),
                    )
                for (name,) in self.conn.execute(
                    "SELECT name FROM sources WHERE removed_at IS NULL"
                ).fetchall():
                    if name not in names:
                        self.conn.execute(
                            "UPDATE sources SET removed_at = ? WHERE name = ?", (now, name)
                        )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot record sources: {exc}") from exc

    def due(self, sources: Sequence[SourceSettings], now: float) -> list[Job]:
        """Jobs for the enabled sources whose next check has come and whose lease is
        free or expired, most overdue first (claim them before fetching)."""
        by_name = {s.name: s for s in sources if s.enabled}
        jobs: list[tuple[float, Job]] = []
        for chunk in _chunks(list(by_name)):
            rows = self.conn.execute(
                "SELECT name, etag, last_modified, body_sha256, next_check_at FROM sources"  # noqa: S608
                " LEFT JOIN source_leases l ON l.source = name"
                " WHERE next_check_at <= ? AND (l.holder IS NULL OR l.expires_at <= ?)"
                f" AND name IN ({','.join('?' * len(chunk))})",
                [now, now, *chunk],
            ).fetchall()
            for name, etag, last_modified, body_sha, next_at in rows:
                jobs.append((next_at, Job(by_name[name], etag, last_modified, body_sha)))
        jobs.sort(key=lambda pair: pair[0])
        return [job for _, job in jobs]

    def job(self, source: SourceSettings) -> Job | None:
        """A job for ``source`` now, due or not (None if it was never recorded)."""
        row = self.conn.execute(
            "SELECT etag, last_modified, body_sha256 FROM sources WHERE name = ?", (source.name,)
        ).fetchone()
        return None if row is None else Job(source, *row)

    def next_check_at(self, sources: Sequence[SourceSettings]) -> float | None:
        """When the next of ``sources`` may be claimed: it is due and any lease on it
        has run out (a held lease ends with a store, a release or its expiry)."""
        names = [s.name for s in sources if s.enabled]
        best: float | None = None
        for chunk in _chunks(names):
            row = self.conn.execute(
                "SELECT MIN(MAX(next_check_at, CASE WHEN l.holder IS NULL THEN 0"  # noqa: S608
                " ELSE l.expires_at END)) FROM sources LEFT JOIN source_leases l"
                f" ON l.source = name WHERE name IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchone()
            if row and row[0] is not None:
                best = row[0] if best is None else min(best, row[0])
        return best

    def source_errors(self, names: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in _chunks(list(names)):
            out.update(
                self.conn.execute(
                    "SELECT name, consecutive_errors FROM sources"  # noqa: S608
                    f" WHERE name IN ({','.join('?' * len(chunk))})",
                    chunk,
                ).fetchall()
            )
        return out

    def set_circuit(self, host: str, state: str, now: float) -> None:
        try:
            with db.transaction(self.conn):
                self.conn.execute(
                    "INSERT INTO hosts (host, circuit, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (host) DO UPDATE SET circuit = excluded.circuit,"
                    " updated_at = excluded.updated_at",
                    (host, state, now),
                )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot record circuit of {host}: {exc}") from exc

    def dlq_size(self, names: Sequence[str]) -> int:
        return dlq.size(self.conn, list(names))

    # ---- one fetched batch

    def apply(self, result: JobResult, schedule: Schedule) -> Applied:
        """Write everything one fetch produced, in one transaction; under a lease
        (``job.lease_token``) only while it still holds, releasing it (else
        ``LeaseLost``, and nothing is written)."""
        try:
            with db.transaction(self.conn):
                return self._apply(result, schedule)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot store the batch of {result.source.name}: {exc}") from exc

    def _apply(self, r: JobResult, schedule: Schedule) -> Applied:
        s = r.source
        now = r.finished_at
        if r.job.lease_token is not None:
            leases.fence(self.conn, s.name, r.job.lease_token)  # LeaseLost: nothing stored
        if r.status == "failed":
            row = self.conn.execute(
                "SELECT consecutive_errors FROM sources WHERE name = ?", (s.name,)
            ).fetchone()
            errors = (row[0] if row else 0) + 1
            next_at = schedule.after_failure(now, s.interval_s, errors, r.retry_after)
            message = str(r.error) if r.error is not None else "failed"
            self.conn.execute(
                "UPDATE sources SET last_fetch_at = ?, last_status = ?, last_error = ?,"
                " consecutive_errors = ?, next_check_at = ? WHERE name = ?",
                (now, r.http_status, message, errors, next_at, s.name),
            )
            kind = "permanent" if isinstance(r.error, PermanentFailure) else "temporary"
            dlq.record(self.conn, s.name, s.url, kind, message, now)
            return Applied(Counts(), errors, next_at, True)
        counts = self._upsert(s.name, r.items, now) if r.status == "ok" else Counts()
        next_at = schedule.after_success(now, s.interval_s, r.freshness_s)
        keep_validators = r.status == "not_modified"
        self.conn.execute(
            "UPDATE sources SET last_fetch_at = ?, last_success_at = ?, last_status = ?,"
            " last_error = NULL, consecutive_errors = 0, next_check_at = ?,"
            " etag = CASE WHEN ? THEN COALESCE(?, etag) ELSE ? END,"
            " last_modified = CASE WHEN ? THEN COALESCE(?, last_modified) ELSE ? END,"
            " body_sha256 = COALESCE(?, body_sha256) WHERE name = ?",
            (
                now,
                now,
                r.http_status,
                next_at,
                keep_validators,
                r.etag,
                r.etag,
                keep_validators,
                r.last_modified,
                r.last_modified,
                r.body_sha256,
                s.name,
            ),
        )
        resolved = dlq.resolve(self.conn, s.name)
        return Applied(counts, 0, next_at, False, resolved)

    def _upsert(self, source: str, items: Sequence[Item], now: float) -> Counts:
        batch: dict[str, Item] = {}
        for item in items:
            batch.setdefault(item.dedupe_key, item)  # a feed repeating an entry: first wins
        keys = list(batch)
        existing: dict[str, str] = {}
        for chunk in _chunks(keys):
            existing.update(
                self.conn.execute(
                    "SELECT dedupe_key, content_hash FROM items WHERE source = ?"  # noqa: S608
                    f" AND dedupe_key IN ({','.join('?' * len(chunk))})",
                    [source, *chunk],
                ).fetchall()
            )
        inserts = []
        updates = []
        unchanged = 0
        for key, item in batch.items():
            digest = item.content_hash
            if key not in existing:
                inserts.append(
                    (
                        source,
                        key,
                        item.guid,
                        item.url,
                        item.title,
                        item.text,
                        item.author,
                        item.published_at,
                        item.published_at if item.published_at is not None else now,
                        now,
                        now,
                        digest,
                    )
                )
            elif existing[key] != digest:
                updates.append(
                    (
                        item.guid,
                        item.url,
                        item.title,
                        item.text,
                        item.author,
                        item.published_at,
                        item.published_at,
                        now,
                        digest,
                        source,
                        key,
                    )
                )
            else:
                unchanged += 1
        if inserts:
            self.conn.executemany(
                "INSERT INTO items (source, dedupe_key, guid, url, title, text, author,"
                " published_at, ts, first_seen_at, updated_at, content_hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                inserts,
            )
        if updates:
            self.conn.executemany(
                "UPDATE items SET guid = ?, url = ?, title = ?, text = ?, author = ?,"
                " published_at = ?, ts = COALESCE(?, ts), updated_at = ?, content_hash = ?"
                " WHERE source = ? AND dedupe_key = ?",
                updates,
            )
        return Counts(len(inserts), len(updates), unchanged)
