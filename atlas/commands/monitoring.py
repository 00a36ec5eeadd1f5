"""``atlas monitor``, ``atlas alerts list|history|test`` and ``atlas maintenance``.

Each reads the monitoring agent's rendered config (default
``<config dir>/monitoring.json`` of the scope, ``--config`` to point elsewhere) and,
for alerts, the agent's database named in it. What the verbs do is in
:mod:`atlas.agent` (``service``, ``admin``) and :mod:`atlas.maintenance`; this
module parses the arguments and prints the results.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from atlas.commands.args import EXIT_ERROR, EXIT_OK, Subparsers, add_host, add_output
from atlas.commands.common import layout_of, print_json
from atlas.errors import ConfigError
from reconciler import parse_duration

if TYPE_CHECKING:
    from atlas.agent.admin import ChannelTest
    from atlas.agent.settings import Settings
    from atlas.alerting.history import ActiveAlert, Event
    from atlas.maintenance import Maintenance


def _add_config(p: argparse.ArgumentParser) -> None:
    add_host(p)
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="the agent's rendered config (default: <config dir>/monitoring.json)",
    )


def register(sub: Subparsers) -> None:
    _register_monitor(sub)
    _register_alerts(sub)
    _register_maintenance(sub)


def _register_monitor(sub: Subparsers) -> None:
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


def _register_alerts(sub: Subparsers) -> None:
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


def _register_maintenance(sub: Subparsers) -> None:
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


# ---------------------------------------------------------------- arguments


def _config_path(args: argparse.Namespace) -> Path:
    if args.config is not None:
        return Path(args.config)

    layout = layout_of(args)
    return layout.on_disk(layout.config_dir / "monitoring.json")


def _root(args: argparse.Namespace) -> Path | None:
    return None if str(args.root) == "/" else Path(args.root)


def _settings(args: argparse.Namespace) -> Settings:
    from atlas.agent.settings import load_settings

    return load_settings(_config_path(args), _root(args))


def _duration(text: str, option: str) -> float:

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from exc


def _since(text: str, now: float) -> float:
    from datetime import UTC, datetime

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


# ---------------------------------------------------------------- printing


def _iso(ts: float | None) -> str:
    if ts is None:
        return "-"
    from atlas.alerting.model import rfc3339

    return rfc3339(ts)


def _labels(labels: dict[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k not in ("alertname", "severity")}
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"


def _print_alert(a: ActiveAlert) -> None:
    since = a["firedAt"] if a["state"] == "firing" else a["activeAt"]
    summary = a["annotations"].get("summary", "")
    value = "-" if a["value"] is None else f"{a['value']:g}"
    print(
        f"{a['state']:<8} {a['severity']:<8} {a['rule']} {_labels(a['labels'])} "
        f"value={value} since {_iso(since)}" + (f"  {summary}" if summary else "")
    )


def _print_event(e: Event) -> None:
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


def _print_test(t: ChannelTest, output: str) -> None:

    if t.not_recorded is not None:
        print(f"atlas: warning: the attempt was not recorded: {t.not_recorded}", file=sys.stderr)
    if output == "json":
        print_json(
            {"channel": t.channel, "type": t.type, "result": "success" if t.delivered else "failed",
             "error": t.error, "durationSeconds": round(t.duration_s, 3)}
        )  # fmt: skip
    elif t.delivered:
        print(f"test notification delivered to {t.channel} ({t.type}) in {t.duration_s:.2f}s")
    else:
        print(
            f"atlas: error: test notification to {t.channel} ({t.type}) failed: {t.error}",
            file=sys.stderr,
        )


# ---------------------------------------------------------------- atlas monitor


def monitor(args: argparse.Namespace) -> int:
    from atlas.agent import service
    from atlas.alerting.outbox import RetryPolicy

    settings = _settings(args)
    if not 0 < args.retry_initial <= args.retry_max:
        raise ConfigError("--retry-initial and --retry-max: expected 0 < initial <= max seconds")
    retry = RetryPolicy(
        args.retry_initial, args.retry_max, _duration(args.give_up_after, "--give-up-after")
    )
    service.run(settings, _config_path(args), retry, _root(args))
    return EXIT_OK


# ---------------------------------------------------------------- atlas alerts


def alerts_list(args: argparse.Namespace) -> int:
    from atlas.agent import admin

    view = admin.overview(_settings(args))
    if args.output == "json":
        print_json(
            {"alerts": view.alerts, "noData": view.no_data, "pendingNotifications": view.pending}
        )
        return EXIT_OK
    if not view.alerts:
        print("no active alerts")
    for a in view.alerts:
        _print_alert(a)
    for r in view.no_data:
        print(f"no data  rule {r['rule']} since {_iso(r['since'])}")
    if view.pending:
        print(f"{len(view.pending)} notification(s) waiting for delivery:")
        for p in view.pending:
            error = f" — last error: {p['lastError']}" if p["lastError"] else ""
            print(
                f"  #{p['id']} {p['status']} {p['rule']} to {p['channel']}, "
                f"{p['attempts']} attempt(s){error}"
            )
    return EXIT_OK


def alerts_history(args: argparse.Namespace) -> int:
    from atlas.agent import admin

    settings = _settings(args)
    since = _since(args.since, time.time())
    events = admin.events(settings, since, args.limit)
    if args.output == "json":
        print_json({"since": since, "events": events})
        return EXIT_OK
    if not events:
        print(f"nothing since {_iso(since)}")
    for e in events:
        _print_event(e)
    return EXIT_OK


def alerts_test(args: argparse.Namespace) -> int:
    from atlas.agent import admin

    settings = _settings(args)
    env_file = args.env_file or _config_path(args).with_name("monitoring.env")
    result = admin.send_test(
        settings, args.channel, os.environ, Path(env_file), args.env_file is not None
    )
    _print_test(result, args.output)
    return EXIT_OK if result.delivered else EXIT_ERROR


# ---------------------------------------------------------------- atlas maintenance


def _maintenance_file(args: argparse.Namespace) -> Path:
    """The file named by the agent's config; without a config, the rendered default."""
    from atlas.agent.admin import maintenance_file

    named = maintenance_file(_config_path(args), args.config is not None, _root(args))
    if named is not None:
        return named
    layout = layout_of(args)
    return layout.on_disk(layout.data_dir / "maintenance.json")


def _window_json(w: Maintenance | None, path: Path) -> dict[str, str | bool | None]:
    if w is None:
        return {"active": False, "file": str(path)}
    return {
        "active": True,
        "reason": w.reason,
        "since": _iso(w.since),
        "until": None if w.until is None else _iso(w.until),
        "file": str(path),
    }


def _print_window(w: Maintenance | None, path: Path, output: str) -> None:

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
