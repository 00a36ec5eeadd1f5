"""What the operator verbs ask of the agent's config and database
(``atlas alerts list|history|test``, ``atlas maintenance``), beside the agent.

The database is opened read-only and never created: a host where the agent has
not run yet says so. ``send_test`` builds the named channel the way the agent
does, sends it the test notification at once (not through the outbox) and keeps
the attempt in the delivery history when there is one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from atlas.agent.settings import Settings, load_settings
from atlas.alerting import history
from atlas.alerting.delivery import build_channel
from atlas.alerting.model import test_notification
from atlas.alerting.outbox import new_key
from atlas.alerting.redact import Redactor
from atlas.alerting.settings import ChannelSettings
from atlas.alerting.smtp import SmtplibSmtp
from atlas.alerting.store import open_db
from atlas.errors import ConfigError, DeliveryError, StorageError
from atlas.monitoring.http import HttpxHttp
from seams import envfile
from seams.clock import Clock, SystemClock


def open_database(settings: Settings) -> sqlite3.Connection:
    """The agent's database, read-only; StorageError if the agent has not made it yet."""
    path = settings.database_path
    if not Path(path).exists():
        raise StorageError(
            f"{path}: the monitoring database does not exist yet (has atlas-monitoring run?)"
        )
    return open_db(path, settings.busy_timeout_s, readonly=True)


@dataclass(frozen=True)
class Overview:
    """What ``atlas alerts list`` shows: as the database has them, JSON-ready."""

    alerts: list[history.ActiveAlert]
    no_data: list[history.RuleWithoutData]
    pending: list[history.PendingNotification]


def overview(settings: Settings) -> Overview:
    conn = open_database(settings)
    try:
        return Overview(
            history.active_alerts(conn),
            history.rules_without_data(conn),
            history.pending_notifications(conn),
        )
    finally:
        conn.close()


def events(settings: Settings, since: float, limit: int) -> list[history.Event]:
    """State changes and delivery attempts since ``since`` (``history.history``)."""
    conn = open_database(settings)
    try:
        return history.history(conn, since, limit)
    finally:
        conn.close()


def maintenance_file(config: Path, explicit: bool, root: Path | None) -> Path | None:
    """The maintenance file the agent's config names; None when there is no config to
    ask (the caller then uses the rendered default). A config named ``explicit``-ly
    must load."""
    if not (config.exists() or explicit):
        return None
    try:
        return load_settings(config, root).maintenance_file
    except ConfigError:
        if explicit:
            raise
        return None


def channel_env(
    ch: ChannelSettings, env: Mapping[str, str], env_file: Path, explicit: bool
) -> dict[str, str]:
    """``env``, completed from ``env_file`` (the unit's EnvironmentFile) when it lacks
    one of the channel's secrets; an unreadable file only matters if ``explicit``."""
    out = dict(env)
    if all(out.get(v) for v in ch.secret_envs):
        return out
    try:
        from_file = envfile.read(env_file)
    except OSError as exc:
        if explicit:
            raise ConfigError(f"{env_file}: cannot read: {exc.strerror}") from exc
        from_file = {}
    return {**from_file, **out}


@dataclass(frozen=True)
class ChannelTest:
    """The outcome of ``send_test``."""

    channel: str
    type: str
    error: str | None  # None: delivered
    duration_s: float
    not_recorded: str | None = None  # why the attempt is missing from the history

    @property
    def delivered(self) -> bool:
        return self.error is None


def send_test(
    settings: Settings,
    name: str,
    env: Mapping[str, str],
    env_file: Path,
    env_file_explicit: bool = False,
    clock: Clock | None = None,
) -> ChannelTest:
    """Send the test notification through channel ``name`` now; ConfigError if the
    config has no such channel. Its secrets come from ``env``, else ``env_file``."""
    clock = clock or SystemClock()
    ch = settings.alerting.channel(name)
    if ch is None:
        names = ", ".join(c.name for c in settings.alerting.channels) or "none"
        raise ConfigError(f"no channel named {name!r} (channels: {names})")
    env = channel_env(ch, env, env_file, env_file_explicit)
    http = HttpxHttp(trust_env=True, user_agent=f"atlas-monitoring/{settings.version or 'dev'}")
    channel = build_channel(
        ch, env, http=http, smtp=SmtplibSmtp(), redactor=Redactor(), version=settings.version
    )
    now = clock.wall()
    start = clock.monotonic()
    error: str | None = None
    try:
        channel.send(
            test_notification(ch.name, settings.external_url, settings.environment, now), new_key()
        )
    except DeliveryError as exc:
        error = str(exc)
    finally:
        http.close()
    took = clock.monotonic() - start
    return ChannelTest(ch.name, ch.type, error, took, _record(settings, ch.name, now, error, took))


def _record(
    settings: Settings, channel: str, at: float, error: str | None, took: float
) -> str | None:
    """Keep the attempt in the history if the database exists; why not, if it failed."""
    if not Path(settings.database_path).exists():
        return None
    result = "success" if error is None else "failed"
    try:
        conn = open_db(settings.database_path, settings.busy_timeout_s)
        try:
            history.record_test_attempt(conn, channel, at, result, error, took)
        finally:
            conn.close()
    except (StorageError, OSError, Exception) as exc:  # noqa: BLE001 - history is best effort
        return str(exc)
    return None
