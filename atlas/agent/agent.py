"""The monitoring agent: the loop behind ``atlas monitor``.

Every ``intervalSeconds``: collect (system, units, health, scrapes) → evaluate the
rules → store state changes, history and new notifications in one transaction →
wake the delivery worker → publish the figures on ``/metrics``. READY=1 is sent
once the HTTP endpoint listens and the first cycle is done.

Rules see the collected series plus the agent's own state from the previous cycle
(``atlas_alert_rule_nodata{alertname}``, ``atlas_notifications_pending{channel}``,
``atlas_maintenance_active``), so "a rule has had no data for 10m" or "a channel
has been failing" can be alerts themselves (sent through another channel).

SIGHUP re-reads rules and channels (alert state is kept: alerts of a rule that
still exists carry on, those of a removed rule resolve); a config that fails to
load is refused and the running one stays. SIGTERM stops after the current step;
pending notifications stay in the outbox for the next start.

Everything from outside comes in through ``AgentDeps`` (clock, HTTP, systemd,
SMTP, environment, sd_notify), so tests drive the same code with real servers on
127.0.0.1 and a clock of their own.
"""

from __future__ import annotations

import gc
import logging
import random
import sqlite3
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from atlas import maintenance
from atlas.agent.settings import Settings, load_settings
from atlas.alerting import outbox, store
from atlas.alerting.channels import Channel
from atlas.alerting.delivery import Deliverer, build_channel
from atlas.alerting.model import Notification
from atlas.alerting.redact import Redactor, protect_logs
from atlas.alerting.routing import notifications_for
from atlas.alerting.settings import Alerting
from atlas.alerting.smtp import Smtp, SmtplibSmtp
from atlas.alerting.templates import render_annotations
from atlas.errors import AtlasError, ConfigError, StorageError
from atlas.monitoring.collect import Collector, Snapshot
from atlas.monitoring.collect_system import SystemCollector
from atlas.monitoring.exporter import Exporter, ExportView
from atlas.monitoring.http import Http, HttpxHttp
from atlas.monitoring.rules import EngineState, Evaluation, evaluate
from atlas.monitoring.samples import Sample, sample
from atlas.monitoring.server import metrics_server
from atlas.monitoring.units import SystemctlUnits, UnitStates
from seams.clock import Clock, SystemClock
from seams.httpserver import HttpServer
from seams.notify import Notifier

log = logging.getLogger("atlas.monitoring")
KEEP_HISTORY_S = 30 * 24 * 3600.0
PRUNE_EVERY_S = 3600.0


@dataclass
class AgentDeps:
    clock: Clock = field(default_factory=SystemClock)
    probe_http: Http | None = None  # local components: no proxy
    outbound_http: Http | None = None  # webhooks: proxies from the environment
    units: UnitStates | None = None
    smtp: Smtp = field(default_factory=SmtplibSmtp)
    env: Mapping[str, str] = field(default_factory=dict)  # the channels' secrets
    notifier: Notifier = field(default_factory=lambda: Notifier(None))
    rng: random.Random = field(default_factory=random.Random)
    tls_context: ssl.SSLContext | None = None  # None: the system's CAs
    system_metrics: bool = True


class Agent:
    def __init__(
        self,
        settings: Settings,
        deps: AgentDeps,
        config_path: Path | None = None,
        retry: outbox.RetryPolicy | None = None,
        root: Path | None = None,
    ) -> None:
        self.settings = settings
        self.alerting = settings.alerting
        self.deps = deps
        self.config_path = config_path
        self.root = root
        self.clock = deps.clock
        self.retry = retry or outbox.RetryPolicy()
        self.probe_http = deps.probe_http or HttpxHttp(trust_env=False)
        self.outbound_http = deps.outbound_http or HttpxHttp(
            trust_env=True, user_agent=f"atlas-monitoring/{settings.version or 'dev'}"
        )
        self.units = deps.units or SystemctlUnits(settings.scope)
        self.exporter = Exporter()
        self.redactor = Redactor()
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        self._reload_requested = False
        self.state = EngineState()
        self.rule_channels: dict[str, tuple[str, ...]] = {}
        self.last_cycle_mono: float | None = None
        self.reload_ok = True
        self.reload_at = self.clock.wall()
        self.last_prune = 0.0
        self.conn: sqlite3.Connection | None = None
        self.deliverer: Deliverer | None = None
        self.server: HttpServer | None = None
        self._delivery_thread: threading.Thread | None = None
        self.collector: Collector | None = None
        self._unprotect: Callable[[], None] = lambda: None

    # ---- lifecycle

    def open(self) -> None:
        """Open the database, restore alert state, build channels and collectors."""
        s = self.settings
        self.conn = store.open_db(s.database_path, s.busy_timeout_s)
        self.state = store.load_state(self.conn)
        self._remember_channels(self.alerting)
        self.deliverer = Deliverer(
            store.open_db(s.database_path, s.busy_timeout_s),
            self._channels(self.alerting),
            self.clock,
            self.retry,
            self.deps.rng,
            self.exporter.count,
        )
        self._unprotect = protect_logs(self.redactor)
        system = SystemCollector(s.data_dir) if self.deps.system_metrics else None
        self.collector = Collector(s.components, self.probe_http, self.units, self.clock, system)
        if self.state.alerts:
            log.info("restored %d active alert(s) from %s", len(self.state.alerts), s.database_path)

    def listen(self) -> int:
        """Start serving /metrics and /healthz; the bound port."""
        s = self.settings
        try:
            self.server = metrics_server(s.listen, s.port, self.exporter.render, self.health)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {s.listen}:{s.port}: {exc.strerror}") from exc
        self.server.start()
        return self.server.port

    def start_delivery(self) -> None:
        assert self.deliverer is not None
        self._delivery_thread = threading.Thread(
            target=self.deliverer.run, args=(self.stop_event,), name="delivery", daemon=True
        )
        self._delivery_thread.start()

    def run(self) -> None:
        """Open, listen, first cycle, READY=1, then loop until ``request_stop``."""
        try:
            self._run()
        finally:
            self.close()

    def _run(self) -> None:
        n = self.deps.notifier
        self.open()
        port = self.listen()
        self.start_delivery()
        self._safe_cycle()
        # Everything alive now (modules, settings, caches) lives as long as the process:
        # keep it out of the collector's full passes, a good part of the idle CPU.
        gc.collect()
        gc.freeze()
        log.info(
            "monitoring %d component(s) with %d rule(s); listening on %s:%d",
            len(self.settings.components),
            len(self.alerting.rules),
            self.settings.listen,
            port,
        )
        n.ready(self.status_line())
        interval = self.settings.interval_s
        next_at = self.clock.monotonic() + interval
        ping = n.watchdog_interval
        while not self.stop_event.is_set():
            if self._reload_requested:
                self._reload_requested = False
                self.reload()
            if self.clock.monotonic() >= next_at:
                self._safe_cycle()
                next_at += interval
                if next_at <= self.clock.monotonic():  # fell behind: do not burst
                    next_at = self.clock.monotonic() + interval
            if ping:
                n.watchdog()
            wait = next_at - self.clock.monotonic()
            if ping:
                wait = min(wait, ping)
            if wait > 0:
                self.wake.wait(wait)
            self.wake.clear()
        n.stopping()

    def _safe_cycle(self) -> None:
        """A cycle that fails on a bug is logged and retried next interval; /healthz
        turns unhealthy if none succeeds for a while (the state is in the database)."""
        try:
            self.cycle()
        except Exception:  # keep watching; the traceback is logged
            log.exception("monitoring cycle failed")
            self.deps.notifier.status(f"last cycle failed at {_clock_time(self.clock.wall())}")
            return
        self.deps.notifier.status(self.status_line())

    def status_line(self) -> str:
        """What ``systemctl status`` shows: what is watched, what fires, when it looked."""
        firing = sum(1 for a in self.state.alerts.values() if a.state == "firing")
        return (
            f"watching {len(self.settings.components)} components, "
            f"{len(self.alerting.rules)} rules; {firing} alert(s) firing; "
            f"last cycle at {_clock_time(self.clock.wall())}"
        )

    def request_stop(self) -> None:
        self.stop_event.set()
        self.wake.set()
        if self.deliverer is not None:
            self.deliverer.wake.set()

    def request_reload(self) -> None:
        self._reload_requested = True
        self.wake.set()

    def close(self) -> None:
        """Stop the threads and the server and close the database (idempotent)."""
        self.stop_event.set()
        if self.deliverer is not None:
            self.deliverer.wake.set()
        if self._delivery_thread is not None:
            self._delivery_thread.join(timeout=2)  # seams.stopping: a stop takes seconds
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.collector is not None:
            self.collector.close()
        for conn in (self.conn, self.deliverer.conn if self.deliverer else None):
            if conn is not None:
                conn.close()
        self._unprotect()
        self._unprotect = lambda: None

    # ---- one cycle

    def cycle(self) -> Evaluation | None:
        """Collect, evaluate, store, notify; None if the evaluation could not be stored."""
        assert self.collector is not None and self.conn is not None
        snap = self.collector.collect()
        now = self.clock.wall()
        window = maintenance.read(self.settings.maintenance_file, now)
        snap.samples.add(self._own_samples(window is not None))
        start = self.clock.monotonic()
        ev = evaluate(
            self.alerting.rules,
            snap.samples,
            self.state,
            now,
            silenced=window is not None,
            annotate=render_annotations,
        )
        evaluation_s = self.clock.monotonic() - start
        channels = {c.name: c for c in self.alerting.channels}
        notes: list[Notification] = []
        suppressed: list[tuple[Notification, str]] = []
        for group, sink in [(g, "send") for g in ev.groups] + [(g, "hold") for g in ev.suppressed]:
            made, unknown = notifications_for(
                group,
                self.rule_channels.get(group.rule, ()),
                channels,
                external_url=self.settings.external_url,
                environment=self.settings.environment,
            )
            for name in unknown:
                log.error(
                    "rule %s: channel %s is not configured; notification dropped", group.rule, name
                )
            if sink == "send":
                notes += made
            else:
                why = f"maintenance: {window.reason}" if window else "maintenance"
                suppressed += [(n, why) for n in made]
        try:
            store.commit_cycle(self.conn, ev, notes, suppressed, now)
            if now - self.last_prune >= PRUNE_EVERY_S:
                store.prune(self.conn, now, KEEP_HISTORY_S)
                self.last_prune = now
            pending = outbox.pending_counts(self.conn)
        except (sqlite3.Error, StorageError) as exc:
            log.error("cannot store this evaluation (%s); it will be redone next cycle", exc)
            return None
        self.state = ev.state
        for t in ev.transitions:
            what = t.fingerprint or "rule"
            log.info("%s %s: %s -> %s (%s)", t.rule, what, t.from_state, t.to_state, t.reason)
        for n, why in suppressed:
            self.exporter.count(n.receiver, "suppressed")
            log.info("notification of %s to %s held back (%s)", n.rule, n.receiver, why)
        if notes and self.deliverer is not None:
            self.deliverer.wake.set()
        self.last_cycle_mono = self.clock.monotonic()
        self._publish(snap, evaluation_s, pending, window is not None)
        return ev

    def _own_samples(self, silenced: bool) -> list[Sample]:
        """The agent's own state as series rules can use (as of the last cycle): alert
        on a rule without data, a channel whose outbox grows, maintenance left on."""
        out = [
            sample("atlas_alert_rule_nodata", int(r.name in self.state.nodata), alertname=r.name)
            for r in self.alerting.rules
        ]
        pending = self.exporter.view.view.pending
        for ch in self.alerting.channels:
            out.append(
                sample("atlas_notifications_pending", pending.get(ch.name, 0), channel=ch.name)
            )
        out.append(sample("atlas_maintenance_active", int(silenced)))
        return out

    def _publish(
        self, snap: Snapshot, evaluation_s: float, pending: Mapping[str, int], silenced: bool
    ) -> None:
        self.exporter.view.set(
            ExportView(
                samples=snap.exported,
                rules=self.alerting.rules,
                alerts=dict(self.state.alerts),
                nodata=dict(self.state.nodata),
                pending=dict(pending),
                channels=[c.name for c in self.alerting.channels],
                maintenance=silenced,
                collection_s=snap.duration_s,
                evaluation_s=evaluation_s,
                last_cycle_at=self.clock.wall(),
                reload_ok=self.reload_ok,
                reload_at=self.reload_at,
            )
        )

    # ---- channels and reload

    def _channels(self, alerting: Alerting) -> dict[str, Channel]:
        out = {}
        for ch in alerting.channels:
            out[ch.name] = build_channel(
                ch,
                self.deps.env,
                http=self.outbound_http,
                smtp=self.deps.smtp,
                redactor=self.redactor,
                version=self.settings.version,
                tls_context=self.deps.tls_context,
            )
            for var in ch.secret_envs:
                if not self.deps.env.get(var):
                    log.error(
                        "channel %s: environment variable %s is not set; its notifications "
                        "will wait in the outbox",
                        ch.name,
                        var,
                    )
        return out

    def _remember_channels(self, alerting: Alerting) -> None:
        for r in alerting.rules:
            self.rule_channels[r.name] = r.channels

    def reload(self) -> bool:
        """Re-read rules and channels from the config file; False (and no change) on error."""
        if self.config_path is None:
            return False
        n = self.deps.notifier
        n.reloading()
        try:
            fresh = load_settings(self.config_path, self.root)
        except AtlasError as exc:
            log.error("reload refused, keeping the running rules and channels: %s", exc)
            self.reload_ok = False
            n.ready("reload refused: config invalid")
            return False
        changed = [
            f
            for f in ("listen", "port", "interval_s", "components", "database_path", "scope")
            if getattr(fresh, f) != getattr(self.settings, f)
        ]
        if changed:
            log.warning("reload: %s changed; a restart is needed to apply that", ", ".join(changed))
        self.alerting = fresh.alerting
        self.settings = replace(
            self.settings, alerting=fresh.alerting, external_url=fresh.external_url
        )
        self._remember_channels(fresh.alerting)
        if self.deliverer is not None:
            self.deliverer.set_channels(self._channels(fresh.alerting))
        self.reload_ok = True
        self.reload_at = self.clock.wall()
        log.info(
            "reloaded: %d rule(s), %d channel(s)",
            len(fresh.alerting.rules),
            len(fresh.alerting.channels),
        )
        n.ready("reloaded")
        return True

    # ---- /healthz

    def health(self) -> tuple[bool, dict[str, Any]]:
        age = (
            None if self.last_cycle_mono is None else self.clock.monotonic() - self.last_cycle_mono
        )
        limit = max(3 * self.settings.interval_s, 60.0)
        delivering = self._delivery_thread is not None and self._delivery_thread.is_alive()
        ok = age is not None and age <= limit and delivering
        return ok, {
            "lastCycleAgeSeconds": None if age is None else round(age, 3),
            "deliveryWorker": "running" if delivering else "stopped",
            "activeAlerts": len(self.state.alerts),
        }


def _clock_time(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall))
