"""The delivery worker: drains the outbox through the channels.

``build_channel`` turns a channel's settings into the ``Channel`` it is sent
through, its secrets registered with the ``Redactor`` and every error leaving it
redacted (``RedactingChannel``).
``Deliverer.deliver_due`` is one pass (synchronous, for tests and ``--once``);
``Deliverer.run`` repeats it in a thread, sleeping until the next row is due or
until ``wake`` is set by the agent after it enqueued something. The worker has its
own database connection. Each attempt's result is reported to ``on_result``
(``atlas_notifications_total{channel,result}``).
"""

from __future__ import annotations

import logging
import random
import sqlite3
import ssl
import threading
from collections.abc import Callable, Mapping

from atlas.alerting import outbox
from atlas.alerting.channels import Channel, RedactingChannel
from atlas.alerting.channels.email import EmailChannel, EmailSettings
from atlas.alerting.channels.log import LogChannel, LogSettings
from atlas.alerting.channels.slack import SlackChannel
from atlas.alerting.channels.webhook import WebhookChannel, WebhookSettings
from atlas.alerting.model import Notification
from atlas.alerting.redact import Redactor
from atlas.alerting.settings import ChannelSettings
from atlas.alerting.smtp import Smtp
from atlas.errors import (
    PartialDelivery,
    PermanentDeliveryError,
    StorageError,
    TemporaryDeliveryError,
)
from atlas.monitoring.http import Http
from seams.clock import Clock

log = logging.getLogger(__name__)
ResultHook = Callable[[str, str], None]  # (channel, result)
MAX_SLEEP_S = 60.0


def build_channel(
    ch: ChannelSettings,
    env: Mapping[str, str],
    *,
    http: Http,
    smtp: Smtp,
    redactor: Redactor,
    version: str | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> Channel:
    """The channel for ``ch``, its secrets registered with ``redactor``."""
    s = ch.settings
    inner: Channel
    if isinstance(s, LogSettings):
        inner = LogChannel(ch.name, s, ch.templates, redactor)
    elif isinstance(s, EmailSettings):
        if s.password_env and env.get(s.password_env):
            redactor.add(env[s.password_env], s.username)
        inner = EmailChannel(ch.name, s, ch.templates, env, smtp, tls_context)
    elif isinstance(s, WebhookSettings):
        if s.url_env and env.get(s.url_env):
            redactor.add(env[s.url_env])
        inner = WebhookChannel(ch.name, s, env, http, version)
    else:
        if env.get(s.url_env):
            redactor.add(env[s.url_env])
        inner = SlackChannel(ch.name, s, ch.templates, env, http, version)
    return RedactingChannel(inner, redactor)


def _send(channel: Channel, n: Notification, row: outbox.OutboxRow) -> None:
    """Send ``n``; only to the recipients still owed it after a partial delivery."""
    send_to = getattr(channel, "send_to", None)
    if row.recipients is not None and send_to is not None:
        send_to(n, row.key, row.recipients)
    else:
        channel.send(n, row.key)


class Deliverer:
    def __init__(
        self,
        conn: sqlite3.Connection,
        channels: Mapping[str, Channel],
        clock: Clock,
        policy: outbox.RetryPolicy | None = None,
        rng: random.Random | None = None,
        on_result: ResultHook | None = None,
    ) -> None:
        self.conn = conn
        self._channels = dict(channels)
        self._lock = threading.Lock()
        self.clock = clock
        self.policy = policy or outbox.RetryPolicy()
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.on_result = on_result or (lambda channel, result: None)
        self.wake = threading.Event()

    def set_channels(self, channels: Mapping[str, Channel]) -> None:
        """Swap the channels (SIGHUP); pending rows keep waiting in the outbox."""
        with self._lock:
            self._channels = dict(channels)
        self.wake.set()

    def channels(self) -> dict[str, Channel]:
        with self._lock:
            return dict(self._channels)

    def deliver_due(self) -> int:
        """Attempt every due row once (a failing channel is skipped after its first
        failure in this pass); returns the number of attempts."""
        channels = self.channels()
        failing: set[str] = set()
        attempts = 0
        for row in outbox.due(self.conn, self.clock.wall()):
            if row.channel in failing:
                continue
            attempts += 1
            if not self._attempt(row, channels.get(row.channel)):
                failing.add(row.channel)
        return attempts

    def _attempt(self, row: outbox.OutboxRow, channel: Channel | None) -> bool:
        start = self.clock.monotonic()
        notification = self._usable(row, channel)
        if notification is None or channel is None:
            return True
        try:
            _send(channel, notification, row)
        except PartialDelivery as exc:
            return self._partial(row, exc, self.clock.monotonic() - start)
        except PermanentDeliveryError as exc:
            took = self.clock.monotonic() - start
            outbox.mark_failed(self.conn, row, self.clock.wall(), str(exc), took)
            self._report(row, "failed", str(exc))
            return True
        except TemporaryDeliveryError as exc:
            took = self.clock.monotonic() - start
            now = self.clock.wall()
            if now - row.created_at >= self.policy.give_up_after_s:
                error = f"{exc} (giving up after {self.policy.give_up_after_s:g}s)"
                outbox.mark_failed(self.conn, row, now, error, took)
                self._report(row, "failed", error)
                return False
            next_at = now + self.policy.delay(row.attempts + 1, self.rng)
            outbox.mark_retry(self.conn, row, now, str(exc), next_at, took)
            self._report(row, "retry", f"{exc}; next attempt in {next_at - now:.1f}s")
            return False
        took = self.clock.monotonic() - start
        outbox.mark_delivered(self.conn, row, self.clock.wall(), took)
        self._report(row, "success", None)
        return True

    def _usable(self, row: outbox.OutboxRow, channel: Channel | None) -> Notification | None:
        """The row's notification, or None (the row marked failed) if it cannot be sent."""
        if channel is None:
            error = f"channel {row.channel!r} is no longer configured"
        else:
            try:
                return Notification.from_json(row.payload)
            except (ValueError, TypeError, KeyError) as exc:
                error = f"unreadable notification in the outbox: {type(exc).__name__}"
        outbox.mark_failed(self.conn, row, self.clock.wall(), error, 0.0)
        self._report(row, "failed", error)
        return None

    def _partial(self, row: outbox.OutboxRow, exc: PartialDelivery, took: float) -> bool:
        """Some recipients got it: record each; retry only those refused for now."""
        now = self.clock.wall()
        retry, error, next_at = exc.retry, str(exc), None
        if retry and now - row.created_at >= self.policy.give_up_after_s:
            error += f" (giving up after {self.policy.give_up_after_s:g}s)"
        elif retry:
            next_at = now + self.policy.delay(row.attempts + 1, self.rng)
        partial = outbox.Partial(exc.accepted, exc.refused, retry, error)
        result = outbox.mark_partial(self.conn, row, now, partial, next_at, took)
        self._report(row, result, error)
        return bool(exc.accepted) or next_at is None

    def _report(self, row: outbox.OutboxRow, result: str, error: str | None) -> None:
        self.on_result(row.channel, result)
        what = f"notification {row.id} ({row.status} {row.rule}) to {row.channel}"
        attempt = row.attempts + 1
        if result == "success":
            log.info("%s delivered (attempt %d)", what, attempt)
        elif result == "retry" and attempt != 1 and attempt % 10:
            log.info("%s: attempt %d failed: %s", what, attempt, error)  # quieter while down
        else:
            log.warning("%s: attempt %d %s: %s", what, attempt, result, error)

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set."""
        while not stop.is_set():
            self.wake.clear()
            try:
                self.deliver_due()
                next_at = outbox.next_due_at(self.conn)
            except (sqlite3.Error, StorageError) as exc:
                log.error("outbox: %s; retrying in 5s", exc)
                next_at = self.clock.wall() + 5.0
            except Exception:  # a bug must not stop delivery for good
                log.exception("delivery pass failed; retrying in 5s")
                next_at = self.clock.wall() + 5.0
            sleep = MAX_SLEEP_S if next_at is None else next_at - self.clock.wall()
            if sleep > 0:
                self.wake.wait(min(MAX_SLEEP_S, sleep))
            if stop.is_set():
                return
