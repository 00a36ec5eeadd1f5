"""A mail server that refuses some recipients (issue 11): the others got the
message, so it is recorded per recipient, never resent to them, and only the
recipients refused for now (4xx) are tried again; a real aiosmtpd server."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atlas.agent.settings import settings_from_dict
from atlas.alerting import history, outbox, store
from atlas.alerting.delivery import Deliverer, build_channel
from atlas.alerting.redact import Redactor
from atlas.alerting.smtp import SmtplibSmtp
from atlas.db import transaction
from atlas.monitoring.http import HttpxHttp
from seams.testing import FakeClock
from tests.integration.test_alert_outbox import note
from tests.support.mailserver import MailServer
from tests.support.monitoring import config

OPS, GONE, BUSY = "ops@example.com", "gone@example.com", "busy@example.com"


@pytest.fixture
def mail() -> Iterator[MailServer]:
    m = MailServer()
    yield m
    m.close()


class World:
    def __init__(self, tmp_path: Path, mail: MailServer, clock: FakeClock) -> None:
        block = {"host": "127.0.0.1", "port": mail.port, "security": "none"}
        block |= {"from": "atlas@example.com", "to": [OPS, GONE, BUSY], "timeoutSeconds": 5}
        ch = {"name": "ops", "type": "email", "sendResolved": True, "templates": {}}
        s = settings_from_dict(config(tmp_path, rules=[], channels=[{**ch, "email": block}]))
        self.conn = store.open_db(tmp_path / "monitoring.db")
        channel = build_channel(
            s.alerting.channels[0], {}, http=HttpxHttp(), smtp=SmtplibSmtp(), redactor=Redactor()
        )
        self.results: list[str] = []
        self.clock = clock
        self.deliverer = Deliverer(
            self.conn,
            {"ops": channel},
            clock,
            outbox.RetryPolicy(initial_s=1.0, cap_s=1.0),
            random.Random(3),
            lambda _ch, result: self.results.append(result),
        )
        with transaction(self.conn):
            self.id = outbox.enqueue(
                self.conn, note("ops", "disk", clock.wall()), clock.wall(), "k1"
            )

    def row(self) -> tuple[Any, ...]:
        return self.conn.execute(
            "SELECT state, attempts, recipients FROM outbox WHERE id = ?", (self.id,)
        ).fetchone()

    def recipients(self) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT a.attempt, r.recipient, r.result, r.code FROM delivery_recipients r"
            " JOIN delivery_attempts a ON a.id = r.attempt_id ORDER BY r.id"
        ).fetchall()


def received(mail: MailServer) -> list[list[str]]:
    return [d.rcpt_tos for d in mail.messages]


def test_recipients_refused_for_good_do_not_fail_the_others(
    tmp_path: Path, mail: MailServer, clock: FakeClock
) -> None:
    mail.handler.refuse = {GONE: "550 5.1.1 no such user"}
    w = World(tmp_path, mail, clock)
    w.deliverer.deliver_due()
    assert received(mail) == [[OPS, BUSY]]
    assert w.row() == ("delivered", 1, None)
    assert w.results == ["partial"]
    assert w.recipients() == [
        (1, OPS, "delivered", 250),
        (1, BUSY, "delivered", 250),
        (1, GONE, "refused", 550),
    ]
    (event,) = [e for e in history.history(w.conn, 0) if e["kind"] == "delivery"]
    assert event["result"] == "partial"
    assert "gone@example.com refused (550 5.1.1 no such user)" in (event["error"] or "")
    assert event["recipients"][-1] == {
        "recipient": GONE,
        "result": "refused",
        "code": 550,
        "reply": "5.1.1 no such user",
    }
    clock.advance(3600)
    w.deliverer.deliver_due()
    assert received(mail) == [[OPS, BUSY]], "nothing is sent again"


def test_only_recipients_refused_for_now_are_tried_again(
    tmp_path: Path, mail: MailServer, clock: FakeClock
) -> None:
    mail.handler.refuse = {GONE: "550 5.1.1 no such user", BUSY: "450 4.2.1 mailbox busy"}
    w = World(tmp_path, mail, clock)
    w.deliverer.deliver_due()
    assert received(mail) == [[OPS]]
    state, attempts, remaining = w.row()
    assert (state, attempts, remaining) == ("pending", 1, f'["{BUSY}"]')
    mail.handler.refuse = {GONE: "550 5.1.1 no such user"}
    clock.advance(2)
    w.deliverer.deliver_due()
    assert received(mail) == [[OPS], [BUSY]], "ops is not sent the message twice"
    assert w.row() == ("delivered", 2, None)
    assert w.results == ["partial", "success"]
    assert w.recipients() == [
        (1, OPS, "delivered", 250),
        (1, GONE, "refused", 550),
        (1, BUSY, "retry", 450),
        (2, BUSY, "delivered", 250),
    ]


def test_every_recipient_refused_for_now_is_a_retry_of_all(
    tmp_path: Path, mail: MailServer, clock: FakeClock
) -> None:
    mail.handler.refuse = dict.fromkeys((OPS, GONE, BUSY), "451 4.3.0 try later")
    w = World(tmp_path, mail, clock)
    w.deliverer.deliver_due()
    assert received(mail) == []
    assert w.row()[:2] == ("pending", 1) and w.results == ["retry"]


def test_a_database_of_the_previous_schema_keeps_its_history(tmp_path: Path) -> None:
    from atlas.db import connect

    path = tmp_path / "monitoring.db"
    old = connect(path, store.MIGRATIONS[:1])
    old.execute(
        "INSERT INTO delivery_attempts (at, outbox_id, channel, rule, status, attempt, result,"
        " error, duration_s) VALUES (1, NULL, 'ops', 'disk', 'firing', 1, 'success', NULL, 0.1)"
    )
    old.close()
    conn = store.open_db(path)
    (event,) = history.history(conn, 0)
    assert (event["kind"], event["result"], event["channel"]) == ("delivery", "success", "ops")
