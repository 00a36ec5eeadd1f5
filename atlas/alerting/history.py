"""Read-only views of ``monitoring.db`` for ``atlas alerts list`` and ``history``."""

from __future__ import annotations

import json
import sqlite3
from typing import Literal, NotRequired, TypedDict

from atlas.alerting.model import TEST_ALERTNAME
from atlas.db import transaction


class ActiveAlert(TypedDict):
    fingerprint: str
    rule: str
    severity: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: str  # pending | firing
    value: float | None
    activeAt: float
    firedAt: float | None
    keepFiringSince: float | None
    notified: bool
    lastNotifiedAt: float | None
    silencedAt: float | None


class RuleWithoutData(TypedDict):
    rule: str
    since: float


class PendingNotification(TypedDict):
    id: int
    channel: str
    rule: str
    status: str
    createdAt: float
    attempts: int
    nextAttemptAt: float
    lastError: str | None


StateEvent = TypedDict(
    "StateEvent",
    {
        "kind": Literal["state"],
        "at": float,
        "rule": str,
        "fingerprint": str,  # "" for a rule-level change
        "labels": dict[str, str],
        "from": str,
        "to": str,
        "value": float | None,
        "reason": str,
    },
)


class DeliveryEvent(TypedDict):
    kind: Literal["delivery"]
    at: float
    rule: str
    channel: str
    status: str
    attempt: int
    result: str
    error: str | None
    durationSeconds: float
    notification: int | None  # the outbox row; None for ``atlas alerts test``
    recipients: NotRequired[list[RecipientAnswer]]  # a partly delivered email


class RecipientAnswer(TypedDict):
    recipient: str
    result: str  # delivered | refused | retry
    code: int | None
    reply: str | None


Event = StateEvent | DeliveryEvent


def active_alerts(conn: sqlite3.Connection) -> list[ActiveAlert]:
    rows = conn.execute(
        "SELECT fingerprint, rule, labels, annotations, state, value, active_at, fired_at,"
        " keep_firing_since, notified, last_notified_at, silenced_at FROM alerts"
        " ORDER BY CASE state WHEN 'firing' THEN 0 ELSE 1 END, rule, fingerprint"
    ).fetchall()
    out: list[ActiveAlert] = []
    for r in rows:
        labels = json.loads(r[2])
        out.append(
            {
                "fingerprint": r[0],
                "rule": r[1],
                "severity": labels.get("severity", ""),
                "labels": labels,
                "annotations": json.loads(r[3]),
                "state": r[4],
                "value": r[5],
                "activeAt": r[6],
                "firedAt": r[7],
                "keepFiringSince": r[8],
                "notified": bool(r[9]),
                "lastNotifiedAt": r[10],
                "silencedAt": r[11],
            }
        )
    return out


def rules_without_data(conn: sqlite3.Connection) -> list[RuleWithoutData]:
    return [
        {"rule": rule, "since": since}
        for rule, since in conn.execute(
            "SELECT rule, since FROM rule_status WHERE state = 'nodata' ORDER BY rule"
        )
    ]


def pending_notifications(conn: sqlite3.Connection) -> list[PendingNotification]:
    return [
        {
            "id": r[0],
            "channel": r[1],
            "rule": r[2],
            "status": r[3],
            "createdAt": r[4],
            "attempts": r[5],
            "nextAttemptAt": r[6],
            "lastError": r[7],
        }
        for r in conn.execute(
            "SELECT id, channel, rule, status, created_at, attempts, next_attempt_at, last_error"
            " FROM outbox WHERE state = 'pending' ORDER BY id"
        )
    ]


def _recipient_answers(conn: sqlite3.Connection, since: float) -> dict[int, list[RecipientAnswer]]:
    out: dict[int, list[RecipientAnswer]] = {}
    for attempt_id, recipient, result, code, reply in conn.execute(
        "SELECT attempt_id, recipient, result, code, reply FROM delivery_recipients"
        " WHERE at >= ? ORDER BY id",
        (since,),
    ):
        answer: RecipientAnswer = {
            "recipient": recipient,
            "result": result,
            "code": code,
            "reply": reply,
        }
        out.setdefault(attempt_id, []).append(answer)
    return out


def history(conn: sqlite3.Connection, since: float, limit: int = 1000) -> list[Event]:
    """State changes and delivery attempts since ``since``, oldest first (the newest
    ``limit`` of them)."""
    events: list[Event] = []
    for r in conn.execute(
        "SELECT at, rule, fingerprint, labels, from_state, to_state, value, reason"
        " FROM alert_history WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?",
        (since, limit),
    ):
        events.append(
            {
                "kind": "state",
                "at": r[0],
                "rule": r[1],
                "fingerprint": r[2],
                "labels": json.loads(r[3]),
                "from": r[4],
                "to": r[5],
                "value": r[6],
                "reason": r[7],
            }
        )
    answers = _recipient_answers(conn, since)
    for r in conn.execute(
        "SELECT at, rule, channel, status, attempt, result, error, duration_s, outbox_id, id"
        " FROM delivery_attempts WHERE at >= ? ORDER BY at DESC, id DESC LIMIT ?",
        (since, limit),
    ):
        event: DeliveryEvent = {
            "kind": "delivery",
            "at": r[0],
            "rule": r[1],
            "channel": r[2],
            "status": r[3],
            "attempt": r[4],
            "result": r[5],
            "error": r[6],
            "durationSeconds": r[7],
            "notification": r[8],
        }
        if r[9] in answers:
            event["recipients"] = answers[r[9]]
        events.append(event)
    events.sort(key=lambda e: e["at"])
    return events[-limit:]


def record_test_attempt(
    conn: sqlite3.Connection, channel: str, at: float, result: str, error: str | None, took: float
) -> None:
    """Keep an ``atlas alerts test`` attempt in the delivery history."""
    with transaction(conn):
        conn.execute(
            "INSERT INTO delivery_attempts (at, outbox_id, channel, rule, status, attempt, result,"
            " error, duration_s) VALUES (?, NULL, ?, ?, 'firing', 1, ?, ?, ?)",
            (at, channel, TEST_ALERTNAME, result, error, took),
        )
