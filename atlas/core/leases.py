"""Leases on sources in the content database: which instance fetches a source now.

Table ``source_leases`` (migration 3): one row per source — ``holder`` (an
instance's id, NULL when free), ``expires_at`` (wall time) and ``token``, a fencing
token bumped by every claim. An instance

* **claims** the due sources it wants with ONE statement per batch (below): a
  source is claimable when it is due, enabled, configured, and its lease is free or
  expired — so a stopped instance's sources are taken over once its leases run
  out, by whichever instance has room;
* **renews** the leases of its fetches in flight from its loop (every third of the
  period), one statement for all of them; a renewal that finds a lease gone tells it
  the source was taken over;
* **releases** a lease in the very transaction that stores the source's batch
  (``Store.apply``), after checking that the lease still carries its token. A
  holder whose lease expired and was taken over therefore cannot store over the new
  holder's work: its late result raises ``LeaseLost`` and is dropped. A fetch cut
  short by a shutdown releases its lease at once.

Nothing is assigned: adding an instance only adds a claimer, removing one leaves
its leases to expire (or releases them on a clean stop). No two instances fetch a
source at once while each renews within its period.

The claim on SQLite (``BEGIN IMMEDIATE`` makes it the only writer; ``RETURNING``
gives the rows it took with their new tokens)::

    UPDATE source_leases SET holder = :me, token = token + 1, expires_at = :until, ...
    WHERE source IN (SELECT l.source FROM source_leases l JOIN sources s ...
                     WHERE <due, configured, free or expired>
                     ORDER BY s.next_check_at LIMIT :n)
    RETURNING source, token

maps onto PostgreSQL (several hosts) as the same statement with the inner select
locking the rows it picks and skipping rows other claimers hold locked, so
concurrent claimers neither wait for nor take each other's rows::

    WITH picked AS (
        SELECT l.source FROM source_leases l JOIN sources s ON s.name = l.source
        WHERE l.source = ANY(:names) AND s.next_check_at <= :now AND s.enabled = 1
          AND s.removed_at IS NULL AND (l.holder IS NULL OR l.expires_at <= :now)
        ORDER BY s.next_check_at LIMIT :n
        FOR UPDATE OF l SKIP LOCKED)
    UPDATE source_leases l SET holder = :me, token = l.token + 1,
           expires_at = :until, claimed_at = :now
    FROM picked WHERE l.source = picked.source
    RETURNING l.source, l.token

(``json_each(:names)`` here is ``= ANY(:names)`` there; the fence in ``Store.apply``
is ``SELECT token … FOR UPDATE`` in the storing transaction.)
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Mapping, Sequence

from atlas import db
from atlas.errors import LeaseLost, StorageError

CLAIM_SQL = """
UPDATE source_leases SET holder = :me, token = token + 1, expires_at = :until, claimed_at = :now
WHERE source IN (
    SELECT l.source FROM source_leases AS l JOIN sources AS s ON s.name = l.source
    WHERE l.source IN (SELECT value FROM json_each(:names))
      AND s.next_check_at <= :now AND s.enabled = 1 AND s.removed_at IS NULL
      AND (l.holder IS NULL OR l.expires_at <= :now)
    ORDER BY s.next_check_at LIMIT :n)
RETURNING source, token
"""

RENEW_SQL = """
UPDATE source_leases SET expires_at = :until
WHERE holder = :me AND EXISTS (
    SELECT 1 FROM json_each(:held) AS j
    WHERE j.key = source_leases.source AND j.value = source_leases.token)
RETURNING source
"""

TAKE_SQL = """
UPDATE source_leases SET holder = ?, token = token + 1, expires_at = ?, claimed_at = ?
WHERE source = ? AND (holder IS NULL OR expires_at <= ?)
RETURNING token
"""

RELEASE_SQL = (
    "UPDATE source_leases SET holder = NULL, expires_at = 0 WHERE source = ? AND token = ?"
)


def holder_id(instance: int | str) -> str:
    """This process's name as a lease holder: host, instance and pid (a restarted
    instance is a new holder; the leases of its former self just expire)."""
    return f"{socket.gethostname()}/core@{instance}/{os.getpid()}"


class Leases:
    """One instance's side of ``source_leases``, on the loop's connection."""

    def __init__(self, conn: sqlite3.Connection, holder: str, period_s: float) -> None:
        self.conn = conn
        self.holder = holder
        self.period_s = period_s

    def claim(self, names: Sequence[str], now: float, limit: int) -> dict[str, int]:
        """Claim up to ``limit`` of ``names`` that are due and free (or expired):
        {source: fencing token}."""
        if limit <= 0 or not names:
            return {}
        params = {
            "me": self.holder,
            "until": now + self.period_s,
            "now": now,
            "names": json.dumps(list(names)),
            "n": limit,
        }
        try:
            with db.transaction(self.conn):
                rows = self.conn.execute(CLAIM_SQL, params).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot claim sources: {exc}") from exc
        return {str(source): int(token) for source, token in rows}

    def take(self, source: str, now: float) -> int | str:
        """Claim one source whether due or not (a retry by hand): its token, or the
        holder that is fetching it now."""
        try:
            with db.transaction(self.conn):
                row = self.conn.execute(
                    TAKE_SQL, (self.holder, now + self.period_s, now, source, now)
                ).fetchone()
                if row is not None:
                    return int(row[0])
                held = self.conn.execute(
                    "SELECT holder FROM source_leases WHERE source = ?", (source,)
                ).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot claim source {source}: {exc}") from exc
        return str(held[0]) if held else "nobody (the source was never recorded)"

    def renew(self, held: Mapping[str, int], now: float) -> set[str]:
        """Extend the leases of ``held`` ({source: token}); returns those no longer
        held (expired and taken over, or released)."""
        if not held:
            return set()
        params = {"me": self.holder, "until": now + self.period_s, "held": json.dumps(held)}
        try:
            with db.transaction(self.conn):
                kept = {row[0] for row in self.conn.execute(RENEW_SQL, params).fetchall()}
        except sqlite3.Error as exc:
            raise StorageError(f"cannot renew leases: {exc}") from exc
        return set(held) - kept

    def release(self, source: str, token: int) -> None:
        """Free a lease this instance holds (a stale token changes nothing)."""
        try:
            with db.transaction(self.conn):
                self.conn.execute(RELEASE_SQL, (source, token))
        except sqlite3.Error as exc:
            raise StorageError(f"cannot release the lease of {source}: {exc}") from exc


def fence(conn: sqlite3.Connection, source: str, token: int) -> None:
    """Inside the storing transaction: refuse the store unless the source's lease is
    still held under ``token``; then release it (the store ends the fetch)."""
    row = conn.execute(
        "SELECT token, holder FROM source_leases WHERE source = ?", (source,)
    ).fetchone()
    current, holder = (None, None) if row is None else (int(row[0]), row[1])
    if current != token or holder is None:
        raise LeaseLost(
            f"lease of source {source} lost: fetched under token {token}, the lease is now "
            f"at token {current} ({holder or 'free'}); the result is dropped, not stored"
        )
    conn.execute(RELEASE_SQL, (source, token))
