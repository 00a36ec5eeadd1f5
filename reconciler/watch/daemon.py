"""``atlas reconcile --watch``: the reconcile loop as a service.

Around ``Reconciler.watch`` this wires what a daemon needs: the HTTP endpoint
(/metrics, /healthz, the signed webhook), the refs watcher of a local repository
(a new commit wakes the loop within a second), signals (SIGTERM and SIGINT stop
after the current cycle, SIGHUP reconciles now), and sd_notify — READY=1 after the
server listens (not after the first cycle: a service that waits for the reconcile
lock held by ``atlas reconcile --once``, or whose first converge outlasts
TimeoutStartSec=, must not be killed as failing to start), STATUS= with each action
and after each cycle, WATCHDOG=1 while the loop is healthy, STOPPING=1.

The loop is healthy while a cycle ended within three intervals (and ten minutes of
slack for a long rollout); /healthz and the watchdog both say so.

Between polls the live drift watcher (``reconciler.watch.live``) wakes the loop when
a file Atlas wrote is edited by hand or a unit it starts is stopped by hand.
"""

from __future__ import annotations

import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from reconciler.actions import Action
from reconciler.errors import UsageError
from reconciler.loop import Reconciler
from reconciler.record import CycleResult, Log
from reconciler.watch import live
from reconciler.watch.refs import RefsWatcher, git_dir
from reconciler.watch.server import ReconcilerServer
from seams.notify import Notifier
from seams.stopping import arm_deadline


@dataclass(frozen=True)
class DaemonSettings:
    interval: float  # seconds between polls
    host: str  # where /metrics, /healthz and POST /hooks/git listen
    port: int
    webhook_secret: bytes | None  # None: every webhook is refused


class Daemon:
    def __init__(
        self, rec: Reconciler, settings: DaemonSettings, notifier: Notifier, log: Log
    ) -> None:
        self.rec = rec
        self.settings = settings
        self.notifier = notifier
        self.log = log
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.live = live.for_daemon(rec, self.wake.set, log)
        self.chained = rec.options.on_action
        rec.options.on_action = self._on_action
        try:
            self.server = ReconcilerServer(
                settings.host.strip("[]"),
                settings.port,
                rec.metrics.exposition,
                self.healthy,
                self.pushed,
                settings.webhook_secret,
            )
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}"
            ) from exc

    def healthy(self) -> bool:
        age = self.rec.host.clock.monotonic() - self.rec.last_cycle_end
        return bool(age < 3 * self.settings.interval + 600)

    def pushed(self, reason: str) -> None:
        self.rec.recorder.push_requested(reason)
        self.wake.set()

    def shutdown(self, *_: object) -> None:
        self.stop.set()
        self.wake.set()
        arm_deadline()  # a cycle in flight ends there, as after SIGKILL (journaled)

    def _on_cycle(self, result: CycleResult) -> None:
        self.live.after_cycle(self.rec, result)
        level = "info" if result.ok else "error"
        self.log(level, f"{result.outcome} {result.revision[:12]} {result.reason}".rstrip())
        at = time.strftime("%H:%M:%S")
        every = f"{self.settings.interval:g}s"
        rev = f" {result.revision[:12]}" if result.revision else ""
        self.notifier.status(f"{result.outcome}{rev} at {at}; polling every {every}")

    def _on_action(self, action: Action) -> None:
        """STATUS= while a cycle changes the host: what it is doing this moment."""
        self.notifier.status(f"applying: {action.verb} {action.target}".rstrip())
        if self.chained is not None:
            self.chained(action)

    def _ping(self) -> None:
        interval = self.notifier.watchdog_interval or 10
        while not self.stop.wait(interval):
            if self.healthy():
                self.notifier.watchdog()

    def _refs_watcher(self) -> RefsWatcher | None:
        repo = Path(self.rec.target.repo)
        if repo.exists() and git_dir(repo) is not None:
            return RefsWatcher(repo, self.wake.set)
        return None

    def run(self) -> None:
        """Serve and reconcile until SIGTERM or SIGINT."""
        self.server.start()
        watcher = self._refs_watcher()
        if watcher is not None:
            watcher.start()
        self.live.start()
        signal.signal(signal.SIGTERM, self.shutdown)
        signal.signal(signal.SIGINT, self.shutdown)
        signal.signal(signal.SIGHUP, lambda *_: self.wake.set())
        if self.notifier.watchdog_interval:
            threading.Thread(target=self._ping, name="watchdog", daemon=True).start()
        t = self.rec.target
        self.notifier.ready(f"first reconcile of {t.repo} ({t.ref or 'HEAD'})")
        self.log(
            "info",
            f"watching {t.repo} ({t.ref or 'HEAD'}) for {t.environment}; "
            f"metrics on http://{self.settings.host}:{self.server.port}/metrics",
        )
        try:
            self.rec.watch(self.stop, self.wake, self.settings.interval, self._on_cycle)
        finally:
            self.notifier.stopping()
            self.server.stop()
            self.live.stop()
            if watcher is not None:
                watcher.stop()
