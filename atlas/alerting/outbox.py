"""The notification outbox: durable, retried, never sent twice once delivered.

A notification is a row (``state`` pending) written in the same transaction as
the alert state that produced it. The delivery worker takes due rows in order;
success marks the row delivered at once, a temporary failure schedules the next
attempt after a capped exponential backoff with full jitter
(``uniform(0, min(cap, initial * 2**(attempt-1)))``) and holds back the channel's
later rows too, so a channel that is down is not hammered and gets everything, in
order, when it is back. A permanent failure (the receiver rejected the message)
or a notification older than ``give_up_after`` is marked failed. Every attempt is
a row of ``delivery_attempts``.

An email some of whose recipients were refused is ``partial``: each recipient's
answer is a row of ``delivery_recipients``; the row is finished if the refusals
were for good (5xx), and otherwise stays pending for the recipients refused for
now (``recipients``, JSON), who alone get the next attempt: nobody who got the
message is sent it again.

Between the receiver's acceptance and the "delivered" commit there is a window of
a few milliseconds in which a crash leads to one re-send (at-least-once); the
outbox ``key`` travels with the message (Idempotency-Key, Message-ID) for
receivers that deduplicate.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from atlas.alerting.model import Notification
from atlas.db import transaction

KeyFactory = Callable[[], str]
Answer = tuple[str, str, int | None, str | None]  # recipient, result, SMTP code, reply


def new_key() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RetryPolicy:
    initial_s: float = 2.0
    cap_s: float = 300.0
    give_up_after_s: float = 24 * 3600.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter backoff before attempt ``attempt + 1`` (``attempt`` >= 1 failed)."""
        ceiling = min(self.cap_s, self.initial_s * (2 ** max(0, min(attempt - 1, 60))))
        return rng.uniform(0.0, ceiling)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    key: str
    created_at: float
    channel: str
    rule: str
    status: str
    payload: str
    attempts: int
    next_attempt_at: float
    recipients_json: str | None = None

    @property
    def recipients(self) -> tuple[str, ...] | None:
        """The recipients still owed this notification (None: all of the channel's)."""
        if self.recipients_json is None:
            return None
        return tuple(json.loads(self.recipients_json))


def enqueue(conn: sqlite3.Connection, n: Notification, now: float, key: str) -> int:
    """Add ``n`` (inside the caller's transaction); its id."""
    cur = conn.execute(
        "INSERT INTO outbox (key, created_at, channel, rule, status, payload, next_attempt_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (key, now, n.receiver, n.rule, n.status, n.to_json(), now),
    )
    return int(cur.lastrowid or 0)


def record_suppressed(conn: sqlite3.Connection, n: Notification, now: float, why: str) -> None:
    """A notification held back (maintenance): history only, nothing to deliver."""
    conn.execute(
        "INSERT INTO delivery_attempts (at, outbox_id, channel, rule, status, attempt, result,"
        " error, duration_s) VALUES (?, NULL, ?, ?, ?, 0, 'suppressed', ?, 0)",
        (now, n.receiver, n.rule, n.status, why),
    )


def due(conn: sqlite3.Connection, now: float, limit: int = 100) -> list[OutboxRow]:
    rows = conn.execute(
        "SELECT id, key, created_at, channel, rule, status, payload, attempts, next_attempt_at,"
        " recipients FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?"
        " ORDER BY id LIMIT ?",
        (now, limit),
    ).fetchall()
    return [OutboxRow(*r) for r in rows]


def next_due_at(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'").fetchone()
    return None if row is None or row[0] is None else float(row[0])


def pending_counts(conn: sqlite3.Connection) -> dict[str, int]:
    return dict(
        conn.execute(
            "SELECT channel, COUNT(*) FROM outbox WHERE state = 'pending' GROUP BY channel"
        )
    )


def _attempt(
    conn: sqlite3.Connection,
    row: OutboxRow,
    now: float,
    result: str,
    error: str | None,
    duration_s: float,
) -> int:
    cur = conn.execute(
        "INSERT INTO delivery_attempts (at, outbox_id, channel, rule, status, attempt, result,"
        " error, duration_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            now,
            row.id,
            row.channel,
            row.rule,
            row.status,
            row.attempts + 1,
            result,
            error,
            duration_s,
        ),
    )
    return int(cur.lastrowid or 0)


def _recipients(
    conn: sqlite3.Connection,
    row: OutboxRow,
    now: float,
    attempt_id: int,
    answers: list[Answer],
) -> None:
    conn.executemany(
        "INSERT INTO delivery_recipients (at, attempt_id, outbox_id, recipient, result, code,"
        " reply) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(now, attempt_id, row.id, *answer) for answer in answers],
    )


def mark_delivered(conn: sqlite3.Connection, row: OutboxRow, now: float, duration_s: float) -> None:
    with transaction(conn):
        conn.execute(
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, finished_at = ?,"
            " last_error = NULL, recipients = NULL WHERE id = ?",
            (now, row.id),
        )
        attempt_id = _attempt(conn, row, now, "success", None, duration_s)
        if row.recipients is not None:  # the rest of a partly delivered message
            answers: list[Answer] = [(r, "delivered", 250, None) for r in row.recipients]
            _recipients(conn, row, now, attempt_id, answers)


@dataclass(frozen=True)
class Partial:
    """One attempt's answers per recipient; ``retry`` are those refused for now."""

    delivered: tuple[str, ...]
    refused: dict[str, tuple[int, str]]
    retry: tuple[str, ...]
    error: str


def mark_partial(
    conn: sqlite3.Connection,
    row: OutboxRow,
    now: float,
    partial: Partial,
    next_at: float | None,
    duration_s: float,
) -> str:
    """Record each recipient's answer; the row stays pending for ``partial.retry`` (at
    ``next_at``) or is finished. Returns the attempt's result."""
    result = "partial" if partial.delivered else ("retry" if partial.retry else "failed")
    with transaction(conn):
        if partial.retry and next_at is not None:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?,"
                " recipients = ? WHERE id = ?",
                (next_at, partial.error, json.dumps(list(partial.retry)), row.id),
            )
        else:
            state = "delivered" if partial.delivered else "failed"
            conn.execute(
                "UPDATE outbox SET state = ?, attempts = attempts + 1, finished_at = ?,"
                " last_error = ?, recipients = NULL WHERE id = ?",
                (state, now, partial.error, row.id),
            )
        attempt_id = _attempt(conn, row, now, result, partial.error, duration_s)
        answers: list[Answer] = [(r, "delivered", 250, None) for r in partial.delivered]
        answers += [
            (r, "retry" if r in partial.retry else "refused", code, reply)
            for r, (code, reply) in partial.refused.items()
        ]
        _recipients(conn, row, now, attempt_id, answers)
    return result


def mark_retry(
    conn: sqlite3.Connection,
    row: OutboxRow,
    now: float,
    error: str,
    next_at: float,
    duration_s: float,
) -> None:
    """A temporary failure: try again at ``next_at``; the channel's later rows wait too."""
    with transaction(conn):
        conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE id = ?",
            (next_at, error, row.id),
        )
        conn.execute(
            "UPDATE outbox SET next_attempt_at = MAX(next_attempt_at, ?)"
            " WHERE channel = ? AND state = 'pending' AND id > ?",
            (next_at, row.channel, row.id),
        )
        _attempt(conn, row, now, "retry", error, duration_s)


def mark_failed(
    conn: sqlite3.Connection, row: OutboxRow, now: float, error: str, duration_s: float
) -> None:
    with transaction(conn):
        conn.execute(
            "UPDATE outbox SET state = 'failed', attempts = attempts + 1, finished_at = ?,"
            " last_error = ? WHERE id = ?",
            (now, error, row.id),
        )
        _attempt(conn, row, now, "failed", error, duration_s)
