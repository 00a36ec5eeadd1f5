"""The outbox and the delivery worker: retries with capped exponential backoff and
full jitter against a real receiver that fails for a while, order per channel,
permanent failures, giving up, and every attempt in the history."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from atlas.agent.settings import settings_from_dict
from atlas.alerting import outbox, store
from atlas.alerting.delivery import Deliverer, build_channel
from atlas.alerting.model import AlertPayload, Notification, build
from atlas.alerting.redact import Redactor
from atlas.alerting.smtp import SmtplibSmtp
from atlas.db import transaction
from atlas.monitoring.http import HttpxHttp
from seams.testing import FakeClock
from tests.support.monitoring import TestServer, config, webhook_channel


def note(channel: str, rule: str, now: float) -> Notification:
    alert = AlertPayload("firing", {"alertname": rule}, {}, now, None, "f" * 16, 1.0, "http://a")
    return build(channel, rule, [alert], external_url="http://a", environment="test", now=now)


class World:
    def __init__(self, tmp_path: Path, server: TestServer, clock: FakeClock, **policy: Any) -> None:
        s = settings_from_dict(
            config(tmp_path, rules=[], channels=[webhook_channel("hook", server.url + "/in")])
        )
        self.conn = store.open_db(tmp_path / "monitoring.db")
        channel = build_channel(
            s.alerting.channels[0], {}, http=HttpxHttp(), smtp=SmtplibSmtp(), redactor=Redactor()
        )
        self.results: list[tuple[str, str]] = []
        self.clock = clock
        self.deliverer = Deliverer(
            self.conn,
            {"hook": channel},
            clock,
            outbox.RetryPolicy(**{"initial_s": 1.0, "cap_s": 4.0, **policy}),
            random.Random(7),
            lambda ch, result: self.results.append((ch, result)),
        )

    def enqueue(self, rule: str, channel: str = "hook") -> int:
        with transaction(self.conn):
            return outbox.enqueue(
                self.conn,
                note(channel, rule, self.clock.wall()),
                self.clock.wall(),
                outbox.new_key(),
            )

    def rows(self) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT id, state, attempts, next_attempt_at FROM outbox ORDER BY id"
        ).fetchall()

    def attempts(self) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT outbox_id, attempt, result, error FROM delivery_attempts ORDER BY id"
        ).fetchall()

    def run_until_quiet(self, step: float = 0.5, limit: int = 200) -> None:
        for _ in range(limit):
            self.deliverer.deliver_due()
            if outbox.next_due_at(self.conn) is None:
                return
            self.clock.advance(step)
        raise AssertionError("the outbox never drained")


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    policy = outbox.RetryPolicy(initial_s=1.0, cap_s=30.0)
    rng = random.Random(1)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0), (6, 30.0), (50, 30.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(2000)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.95 * ceiling and min(delays) < 0.05 * ceiling, "full jitter"


def test_a_receiver_failing_for_a_while_gets_the_notification_when_it_recovers(
    tmp_path: Path, server: TestServer, clock: FakeClock
) -> None:
    w = World(tmp_path, server, clock)
    server.state.statuses = [503, 503, 502, 500]
    oid = w.enqueue("disk-full")
    w.run_until_quiet()
    reqs = server.requests
    assert [r.status for r in reqs] == [503, 503, 502, 500, 200]
    assert len({r.headers["Idempotency-Key"] for r in reqs}) == 1, "the same notification each time"
    assert w.rows()[0][:3] == (oid, "delivered", 5)
    assert [(a[1], a[2]) for a in w.attempts()] == [
        (1, "retry"),
        (2, "retry"),
        (3, "retry"),
        (4, "retry"),
        (5, "success"),
    ]
    assert "webhook answered HTTP 503" in w.attempts()[0][3]
    assert w.results == [("hook", "retry")] * 4 + [("hook", "success")]
    w.deliverer.deliver_due()
    assert len(server.requests) == 5, "a delivered notification is never sent again"


def test_retries_back_off_between_attempts(
    tmp_path: Path, server: TestServer, clock: FakeClock
) -> None:
    w = World(tmp_path, server, clock, initial_s=10.0, cap_s=40.0)
    server.state.status = 503
    w.enqueue("r")
    waits = []
    for _ in range(6):
        w.deliverer.deliver_due()
        next_at = outbox.next_due_at(w.conn)
        assert next_at is not None
        waits.append(next_at - clock.wall())
        assert w.deliverer.deliver_due() == 0 or next_at <= clock.wall(), "nothing before it is due"
        clock.advance(max(next_at - clock.wall(), 0) + 0.001)
    ceilings = [10, 20, 40, 40, 40, 40]
    assert all(0 <= wait <= c for wait, c in zip(waits, ceilings, strict=True))


def test_a_down_channel_holds_its_later_notifications_in_order(
    tmp_path: Path, server: TestServer, clock: FakeClock
) -> None:
    w = World(tmp_path, server, clock)
    server.state.statuses = [503]
    first, second = w.enqueue("one"), w.enqueue("two")
    assert w.deliverer.deliver_due() == 1, "after a failure the channel is skipped in this pass"
    rows = w.rows()
    assert rows[1][3] >= rows[0][3], "the second waits at least as long as the first"
    w.run_until_quiet()
    delivered = [r.json()["groupKey"] for r in server.requests if r.status == 200]
    assert delivered == [
        '{}/{receiver="hook"}:{alertname="one"}',
        '{}/{receiver="hook"}:{alertname="two"}',
    ]
    assert [r[1] for r in w.rows()] == ["delivered", "delivered"] and first < second


def test_a_rejected_notification_is_not_retried(
    tmp_path: Path, server: TestServer, clock: FakeClock
) -> None:
    w = World(tmp_path, server, clock)
    server.state.statuses = [400]
    w.enqueue("bad")
    w.enqueue("good")
    w.run_until_quiet()
    assert [r.status for r in server.requests] == [400, 200]
    assert [r[1] for r in w.rows()] == ["failed", "delivered"]
    assert w.attempts()[0][2:] == ("failed", "webhook answered HTTP 400: receiver says no")


def test_giving_up_on_an_old_notification(
    tmp_path: Path, server: TestServer, clock: FakeClock
) -> None:
    w = World(tmp_path, server, clock, give_up_after_s=30.0)
    server.state.status = 503
    w.enqueue("r")
    w.run_until_quiet(step=5)
    (row,) = w.rows()
    assert row[1] == "failed"
    assert "giving up after 30s" in w.attempts()[-1][3]


def test_a_notification_for_a_removed_channel_fails_with_the_reason(
    tmp_path: Path, server: TestServer, clock: FakeClock
) -> None:
    w = World(tmp_path, server, clock)
    w.enqueue("r", channel="gone")
    w.deliverer.deliver_due()
    assert w.rows()[0][1] == "failed"
    assert w.attempts()[0][3] == "channel 'gone' is no longer configured"
    assert not server.requests


@pytest.mark.parametrize("keep", [10.0])
def test_prune_keeps_recent_history_and_pending_rows(
    tmp_path: Path, server: TestServer, clock: FakeClock, keep: float
) -> None:
    w = World(tmp_path, server, clock)
    w.enqueue("old")
    w.deliverer.deliver_due()
    server.state.status = 503
    w.enqueue("pending")
    w.deliverer.deliver_due()
    clock.advance(100)
    removed = store.prune(w.conn, clock.wall(), keep)
    assert removed == 3  # the delivered row and both attempts
    assert [r[1] for r in w.rows()] == ["pending"]
