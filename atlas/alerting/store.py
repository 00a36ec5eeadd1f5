"""The agent's own database (``monitoring.db``): alert state, history, outbox.

Tables:

* ``alerts`` — every pending or firing alert, so a restart (or SIGKILL) resumes
  the lifecycle where it was: no repeated "firing", no forgotten "resolved".
* ``rule_status`` — the rules in "no data".
* ``alert_history`` — every state change (alerts and rules), kept ``keep_s``.
* ``outbox`` / ``delivery_attempts`` / ``delivery_recipients`` (who got a
  partly delivered email, who was refused) — see :mod:`atlas.alerting.outbox`.

``commit_cycle`` writes one evaluation — state changes, history and the outbox rows
of its notifications — in a single transaction: either all of it is stored, or
none of it and the next evaluation recomputes it. That is what makes a notification
impossible to lose or to enqueue twice across a crash.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from atlas.alerting import outbox
from atlas.alerting.model import Notification
from atlas.db import Migration, connect, transaction
from atlas.monitoring.rules import Alert, EngineState, Evaluation

MIGRATIONS = (
    Migration(
        1,
        "alerts, history and the notification outbox",
        """
        CREATE TABLE alerts (
            fingerprint TEXT PRIMARY KEY,
            rule TEXT NOT NULL,
            labels TEXT NOT NULL,
            annotations TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'firing')),
            value REAL,
            active_at REAL NOT NULL,
            fired_at REAL,
            keep_firing_since REAL,
            notified INTEGER NOT NULL DEFAULT 0,
            last_notified_at REAL,
            silenced_at REAL,
            updated_at REAL NOT NULL
        );
        CREATE INDEX alerts_rule ON alerts(rule);
        CREATE TABLE rule_status (
            rule TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            since REAL NOT NULL
        );
        CREATE TABLE alert_history (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            rule TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            labels TEXT NOT NULL,
            from_state TEXT NOT NULL,
            to_state TEXT NOT NULL,
            value REAL,
            reason TEXT NOT NULL
        );
        CREATE INDEX alert_history_at ON alert_history(at);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            created_at REAL NOT NULL,
            channel TEXT NOT NULL,
            rule TEXT NOT NULL,
            status TEXT NOT NULL,
            payload TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT,
            finished_at REAL
        );
        CREATE INDEX outbox_pending ON outbox(state, next_attempt_at);
        CREATE TABLE delivery_attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            outbox_id INTEGER,
            channel TEXT NOT NULL,
            rule TEXT NOT NULL,
            status TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            result TEXT NOT NULL
                CHECK (result IN ('success', 'retry', 'failed', 'suppressed')),
            error TEXT,
            duration_s REAL NOT NULL
        );
        CREATE INDEX delivery_attempts_at ON delivery_attempts(at);
        """,
    ),
    Migration(
        2,
        "delivery per recipient: partial attempts, who got it, who is still owed it",
        """
        ALTER TABLE outbox ADD COLUMN recipients TEXT;
        CREATE TABLE delivery_attempts_2 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            outbox_id INTEGER,
            channel TEXT NOT NULL,
            rule TEXT NOT NULL,
            status TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            result TEXT NOT NULL
                CHECK (result IN ('success', 'partial', 'retry', 'failed', 'suppressed')),
            error TEXT,
            duration_s REAL NOT NULL
        );
        INSERT INTO delivery_attempts_2 SELECT * FROM delivery_attempts;
        DROP TABLE delivery_attempts;
        ALTER TABLE delivery_attempts_2 RENAME TO delivery_attempts;
        CREATE INDEX delivery_attempts_at ON delivery_attempts(at);
        CREATE TABLE delivery_recipients (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            attempt_id INTEGER NOT NULL,
            outbox_id INTEGER,
            recipient TEXT NOT NULL,
            result TEXT NOT NULL CHECK (result IN ('delivered', 'refused', 'retry')),
            code INTEGER,
            reply TEXT
        );
        CREATE INDEX delivery_recipients_attempt ON delivery_recipients(attempt_id);
        """,
    ),
)


def open_db(path: Path, busy_timeout_s: float = 5.0, readonly: bool = False) -> sqlite3.Connection:
    """Open ``monitoring.db``, creating and migrating it unless ``readonly``."""
    return connect(path, () if readonly else MIGRATIONS, busy_timeout_s, readonly=readonly)


def _alert_row(a: Alert, now: float) -> tuple[object, ...]:
    return (
        a.fingerprint,
        a.rule,
        json.dumps(a.labels, sort_keys=True),
        json.dumps(a.annotations, sort_keys=True),
        a.state,
        a.value,
        a.active_at,
        a.fired_at,
        a.keep_firing_since,
        int(a.notified),
        a.last_notified_at,
        a.silenced_at,
        now,
    )


def load_state(conn: sqlite3.Connection) -> EngineState:
    """The engine state as last committed."""
    alerts = {}
    for row in conn.execute(
        "SELECT fingerprint, rule, labels, annotations, state, value, active_at, fired_at,"
        " keep_firing_since, notified, last_notified_at, silenced_at FROM alerts"
    ):
        a = Alert(
            fingerprint=row[0],
            rule=row[1],
            labels=json.loads(row[2]),
            annotations=json.loads(row[3]),
            state=row[4],
            value=float("nan") if row[5] is None else row[5],
            active_at=row[6],
            fired_at=row[7],
            keep_firing_since=row[8],
            notified=bool(row[9]),
            last_notified_at=row[10],
            silenced_at=row[11],
        )
        alerts[a.fingerprint] = a
    nodata = dict(conn.execute("SELECT rule, since FROM rule_status WHERE state = 'nodata'"))
    return EngineState(alerts, nodata)


def commit_cycle(
    conn: sqlite3.Connection,
    ev: Evaluation,
    notifications: Sequence[Notification],
    suppressed: Iterable[tuple[Notification, str]],
    now: float,
    new_key: outbox.KeyFactory = outbox.new_key,
) -> list[int]:
    """Store one evaluation atomically; returns the new outbox ids."""
    ids: list[int] = []
    suppressed = list(suppressed)
    if not (ev.removed or ev.changed or ev.transitions or notifications or suppressed):
        return ids  # an idle cycle writes nothing
    with transaction(conn):
        for fp in ev.removed:
            conn.execute("DELETE FROM alerts WHERE fingerprint = ?", (fp,))
        conn.executemany(
            "INSERT OR REPLACE INTO alerts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [_alert_row(a, now) for a in ev.changed],
        )
        conn.executemany(
            "INSERT INTO alert_history (at, rule, fingerprint, labels, from_state, to_state,"
            " value, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    t.at,
                    t.rule,
                    t.fingerprint,
                    json.dumps(t.labels, sort_keys=True),
                    t.from_state,
                    t.to_state,
                    None if t.value is None or t.value != t.value else t.value,
                    t.reason,
                )
                for t in ev.transitions
            ],
        )
        conn.execute("DELETE FROM rule_status")
        conn.executemany(
            "INSERT INTO rule_status VALUES (?, 'nodata', ?)", list(ev.state.nodata.items())
        )
        for n in notifications:
            ids.append(outbox.enqueue(conn, n, now, new_key()))
        for n, why in suppressed:
            outbox.record_suppressed(conn, n, now, why)
    return ids


def prune(conn: sqlite3.Connection, now: float, keep_s: float) -> int:
    """Forget history and finished outbox rows older than ``keep_s``; rows removed."""
    cutoff = now - keep_s
    removed = 0
    with transaction(conn):
        for sql in (
            "DELETE FROM alert_history WHERE at < ?",
            "DELETE FROM delivery_attempts WHERE at < ?",
            "DELETE FROM delivery_recipients WHERE at < ?",
            "DELETE FROM outbox WHERE state != 'pending' AND finished_at < ?",
        ):
            removed += conn.execute(sql, (cutoff,)).rowcount
    return removed
