"""``atlas monitor``, ``atlas alerts list|history|test`` and ``atlas maintenance``.

Each reads the monitoring agent's rendered config (default
``<config dir>/monitoring.json`` of the scope, ``--config`` to point elsewhere) and,
for alerts, the agent's database named in it.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from atlas.commands.args import EXIT_ERROR, EXIT_OK, add_host, add_output


def _add_config(p: argparse.ArgumentParser) -> None:
    add_host(p)
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="the agent's rendered config (default: <config dir>/monitoring.json)",
    )


def register(sub: Any) -> None:
    p = sub.add_parser(
        "monitor",
        help="run the monitoring and alerting agent (the atlas-monitoring unit)",
        description="Collect system and component metrics, run health checks, evaluate "
        "the alert rules and deliver notifications. SIGHUP re-reads rules and channels.",
    )
    _add_config(p)
    p.add_argument(
        "--retry-initial",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="first retry delay ceiling of a failed notification (default 2)",
    )
    p.add_argument(
        "--retry-max",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="cap of the retry delay (default 300)",
    )
    p.add_argument(
        "--give-up-after",
        default="24h",
        metavar="DURATION",
        help="stop retrying a notification this old (default 24h)",
    )
    p.set_defaults(handler=monitor)

    p = sub.add_parser("alerts", help="active alerts, their history, and channel tests")
    verbs = p.add_subparsers(dest="alerts_verb", metavar="VERB")
    verbs.required = True
    q = verbs.add_parser("list", help="pending and firing alerts, and rules without data")
    _add_config(q)
    add_output(q)
    q.set_defaults(handler=alerts_list)
    q = verbs.add_parser("history", help="state changes and delivery attempts")
    _add_config(q)
    q.add_argument(
        "--since",
        default="24h",
        help="a duration back from now (30m, 2h, 7d) or an ISO 8601 time (default 24h)",
    )
    q.add_argument("--limit", type=int, default=1000, help="at most this many events")
    add_output(q)
    q.set_defaults(handler=alerts_history)
    q = verbs.add_parser(
        "test",
        help="send a test notification to CHANNEL and report the result",
        description="Send a test notification through CHANNEL now (not through the "
        "outbox). Exit 0 when it was delivered, 1 otherwise.",
    )
    q.add_argument("channel", metavar="CHANNEL")
    _add_config(q)
    q.add_argument(
        "--env-file",
        type=Path,
        default=None,
        help="where channel secrets are when not in the environment "
        "(default: <config dir>/monitoring.env)",
    )
    add_output(q)
    q.set_defaults(handler=alerts_test)

    p = sub.add_parser(
        "maintenance",
        help="silence alert notifications; the API's /readyz reports maintenance",
    )
    verbs = p.add_subparsers(dest="maintenance_verb", metavar="VERB")
    verbs.required = True
    q = verbs.add_parser("on", help="start maintenance (until turned off, or --for)")
    q.add_argument("--for", dest="duration", default=None, help="end by itself after 30m, 2h, …")
    q.add_argument("--reason", default="maintenance", help="shown by status and /readyz")
    _add_config(q)
    add_output(q)
    q.set_defaults(handler=maintenance_on)
    q = verbs.add_parser("off", help="end maintenance")
    _add_config(q)
    add_output(q)
    q.set_defaults(handler=maintenance_off)
    q = verbs.add_parser("status", help="whether maintenance is on, why and until when")
    _add_config(q)
    add_output(q)
    q.set_defaults(handler=maintenance_status)


# ---------------------------------------------------------------- helpers


def _config_path(args: argparse.Namespace) -> Path:
    if args.config is not None:
        return Path(args.config)
    from atlas.commands.common import layout_of

    layout = layout_of(args)
    return layout.on_disk(layout.config_dir / "monitoring.json")


def _settings(args: argparse.Namespace) -> Any:
    from atlas.agent.settings import load_settings

    return load_settings(_config_path(args), None if str(args.root) == "/" else args.root)


def _iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    from atlas.alerting.model import rfc3339

    return rfc3339(ts)


def _duration(text: str, option: str) -> float:
    from atlas.errors import ConfigError
    from reconciler.units import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from exc


def _since(text: str, now: float) -> float:
    from datetime import UTC, datetime

    from atlas.errors import ConfigError
    from reconciler.units import parse_duration

    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            f"--since: expected a duration like 2h or an ISO 8601 time like "
            f"2024-05-01T12:00:00Z; got {text!r}"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _open_db(settings: Any) -> Any:
    from atlas.alerting.store import open_db
    from atlas.errors import StorageError

    path = settings.database_path
    if not Path(path).exists():
        raise StorageError(
            f"{path}: the monitoring database does not exist yet (has atlas-monitoring run?)"
        )
    return open_db(path, settings.busy_timeout_s, readonly=True)


def _labels(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k not in ("alertname", "severity")}
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"


# ---------------------------------------------------------------- atlas monitor


def monitor(args: argparse.Namespace) -> int:
    import signal

    from atlas.agent.agent import Agent, AgentDeps
    from atlas.alerting.outbox import RetryPolicy
    from atlas.logs import setup
    from seams.notify import Notifier

    settings = _settings(args)
    setup(settings.log_level, "monitoring")
    from atlas.errors import ConfigError

    if not 0 < args.retry_initial <= args.retry_max:
        raise ConfigError("--retry-initial and --retry-max: expected 0 < initial <= max seconds")
    retry = RetryPolicy(
        args.retry_initial, args.retry_max, _duration(args.give_up_after, "--give-up-after")
    )
    from atlas.monitoring.units import SystemctlUnits

    # SystemctlUnits gives systemctl neither the secrets nor our NOTIFY_SOCKET (it
    # would send its own ERRNO= there when it fails): seams.systemd.child_env.
    deps = AgentDeps(
        env=dict(os.environ),
        notifier=Notifier.from_environ(),
        units=SystemctlUnits(settings.scope),
    )
    root = None if str(args.root) == "/" else args.root
    agent = Agent(settings, deps, _config_path(args), retry, root)
    signal.signal(signal.SIGTERM, lambda *_: agent.request_stop())
    signal.signal(signal.SIGINT, lambda *_: agent.request_stop())
    signal.signal(signal.SIGHUP, lambda *_: agent.request_reload())
    agent.run()
    return EXIT_OK


# ---------------------------------------------------------------- atlas alerts


def alerts_list(args: argparse.Namespace) -> int:
    from atlas.alerting import history
    from atlas.commands.common import print_json

    settings = _settings(args)
    conn = _open_db(settings)
    try:
        alerts = history.active_alerts(conn)
        nodata = history.rules_without_data(conn)
        pending = history.pending_notifications(conn)
    finally:
        conn.close()
    if args.output == "json":
        print_json({"alerts": alerts, "noData": nodata, "pendingNotifications": pending})
        return EXIT_OK
    if not alerts:
        print("no active alerts")
    for a in alerts:
        since = a["firedAt"] if a["state"] == "firing" else a["activeAt"]
        summary = a["annotations"].get("summary", "")
        value = "-" if a["value"] is None else f"{a['value']:g}"
        print(
            f"{a['state']:<8} {a['severity']:<8} {a['rule']} {_labels(a['labels'])} "
            f"value={value} since {_iso(since)}" + (f"  {summary}" if summary else "")
        )
    for r in nodata:
        print(f"no data  rule {r['rule']} since {_iso(r['since'])}")
    if pending:
        print(f"{len(pending)} notification(s) waiting for delivery:")
        for p in pending:
            error = f" — last error: {p['lastError']}" if p["lastError"] else ""
            print(
                f"  #{p['id']} {p['status']} {p['rule']} to {p['channel']}, "
                f"{p['attempts']} attempt(s){error}"
            )
    return EXIT_OK


def alerts_history(args: argparse.Namespace) -> int:
    from atlas.alerting import history
    from atlas.commands.common import print_json

    settings = _settings(args)
    since = _since(args.since, time.time())
    conn = _open_db(settings)
    try:
        events = history.history(conn, since, args.limit)
    finally:
        conn.close()
    if args.output == "json":
        print_json({"since": since, "events": events})
        return EXIT_OK
    if not events:
        print(f"nothing since {_iso(since)}")
    for e in events:
        if e["kind"] == "state":
            who = "(rule)" if not e["fingerprint"] else _labels(e["labels"])
            value = "" if e["value"] is None else f" value={e['value']:g}"
            print(
                f"{_iso(e['at'])}  state     {e['rule']} {who}: {e['from']} -> {e['to']}"
                f"{value} ({e['reason']})"
            )
        else:
            error = f": {e['error']}" if e["error"] else ""
            print(
                f"{_iso(e['at'])}  delivery  {e['rule']} {e['status']} to {e['channel']}"
                f" attempt {e['attempt']}: {e['result']}{error}"
            )
    return EXIT_OK


def alerts_test(args: argparse.Namespace) -> int:
    from atlas.alerting.delivery import build_channel
    from atlas.alerting.history import record_test_attempt
    from atlas.alerting.model import test_notification
    from atlas.alerting.outbox import new_key
    from atlas.alerting.redact import Redactor
    from atlas.alerting.smtp import SmtplibSmtp
    from atlas.alerting.store import open_db
    from atlas.commands.common import print_json
    from atlas.errors import ConfigError, DeliveryError, StorageError
    from atlas.monitoring.envfile import parse_env_file
    from atlas.monitoring.http import HttpxHttp

    settings = _settings(args)
    ch = settings.alerting.channel(args.channel)
    if ch is None:
        names = ", ".join(c.name for c in settings.alerting.channels) or "none"
        raise ConfigError(f"no channel named {args.channel!r} (channels: {names})")
    env = dict(os.environ)
    env_file = args.env_file or _config_path(args).with_name("monitoring.env")
    missing = [v for v in ch.secret_envs if not env.get(v)]
    if missing:
        try:
            from_file = parse_env_file(Path(env_file).read_text(encoding="utf-8"))
        except OSError as exc:
            if args.env_file is not None:
                raise ConfigError(f"{env_file}: cannot read: {exc.strerror}") from exc
            from_file = {}
        env = {**from_file, **env}
    http = HttpxHttp(trust_env=True, user_agent=f"atlas-monitoring/{settings.version or 'dev'}")
    channel = build_channel(
        ch, env, http=http, smtp=SmtplibSmtp(), redactor=Redactor(), version=settings.version
    )
    now = time.time()
    start = time.monotonic()
    error: str | None = None
    try:
        channel.send(
            test_notification(ch.name, settings.external_url, settings.environment, now), new_key()
        )
    except DeliveryError as exc:
        error = str(exc)
    finally:
        http.close()
    took = time.monotonic() - start
    result = "success" if error is None else "failed"
    if Path(settings.database_path).exists():
        try:
            conn = open_db(settings.database_path, settings.busy_timeout_s)
            try:
                record_test_attempt(conn, ch.name, now, result, error, took)
            finally:
                conn.close()
        except (StorageError, OSError, Exception) as exc:  # noqa: BLE001 - history is best effort
            print(f"atlas: warning: the attempt was not recorded: {exc}", file=sys.stderr)
    if args.output == "json":
        print_json(
            {"channel": ch.name, "type": ch.type, "result": result, "error": error,
             "durationSeconds": round(took, 3)}
        )  # fmt: skip
    elif error is None:
        print(f"test notification delivered to {ch.name} ({ch.type}) in {took:.2f}s")
    else:
        print(
            f"atlas: error: test notification to {ch.name} ({ch.type}) failed: {error}",
            file=sys.stderr,
        )
    return EXIT_OK if error is None else EXIT_ERROR


# ---------------------------------------------------------------- atlas maintenance


def _maintenance_file(args: argparse.Namespace) -> Path:
    """The file named by the agent's config; without a config, the rendered default."""
    from atlas.commands.common import layout_of
    from atlas.errors import ConfigError

    path = _config_path(args)
    if path.exists() or args.config is not None:
        try:
            return Path(_settings(args).maintenance_file)
        except ConfigError:
            if args.config is not None:
                raise
    layout = layout_of(args)
    return layout.on_disk(layout.data_dir / "maintenance.json")


def _window_json(w: Any, path: Path) -> dict[str, Any]:
    if w is None:
        return {"active": False, "file": str(path)}
    return {
        "active": True,
        "reason": w.reason,
        "since": _iso(w.since),
        "until": None if w.until is None else _iso(w.until),
        "file": str(path),
    }


def _print_window(w: Any, path: Path, output: str) -> None:
    from atlas.commands.common import print_json

    if output == "json":
        print_json(_window_json(w, path))
    elif w is None:
        print("maintenance: off")
    else:
        until = "until turned off" if w.until is None else f"until {_iso(w.until)}"
        print(f"maintenance: on since {_iso(w.since)}, {until} — {w.reason}")


def maintenance_on(args: argparse.Namespace) -> int:
    from atlas import maintenance

    path = _maintenance_file(args)
    duration = None if args.duration is None else _duration(args.duration, "--for")
    if duration is not None and duration <= 0:
        from atlas.errors import ConfigError

        raise ConfigError("--for: the duration must be more than 0s")
    window = maintenance.turn_on(path, args.reason, duration)
    _print_window(window, path, args.output)
    return EXIT_OK


def maintenance_off(args: argparse.Namespace) -> int:
    from atlas import maintenance
    from atlas.commands.common import print_json

    path = _maintenance_file(args)
    was_on = maintenance.read(path) is not None
    maintenance.turn_off(path)
    if args.output == "json":
        print_json({"active": False, "wasActive": was_on, "file": str(path)})
    else:
        print("maintenance: off" + ("" if was_on else " (it was not on)"))
    return EXIT_OK


def maintenance_status(args: argparse.Namespace) -> int:
    from atlas import maintenance

    path = _maintenance_file(args)
    _print_window(maintenance.read(path), path, args.output)
    return EXIT_OK
