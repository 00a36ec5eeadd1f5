"""``atlas core``: the ingestion worker as a systemd ``Type=notify`` service.

Start-up order: read and check the config, open (and migrate) the database, bind
the metrics server, record the sources — then READY=1. While running, WATCHDOG=1
pings go out from the loop itself (a stuck loop stops them). ``/healthz`` answers 503
"stalled" when the loop is stuck, 200 "degraded" (naming them) while sources' servers
stall their fetches to the deadline, else 200 "ok". SIGTERM or SIGINT
stops new fetches, stores what finishes within 2 s, cuts the rest short (their
sources stay due), and exits 0 within seconds (``seams.stopping``).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from atlas import logs
from atlas.core import settings as core_settings
from atlas.core.metrics import CoreMetrics
from atlas.core.metrics_server import start as start_metrics
from atlas.core.store import open_store
from atlas.core.worker import Worker
from atlas.errors import AtlasError, StorageError
from atlas.resilience.ratelimit import system_load
from seams.clock import SystemClock
from seams.notify import Notifier
from seams.stopping import GRACE_S, arm_deadline, exit_now

STALL_S = 120.0
STALLED_NAMED = 10  # /healthz names at most this many stalled sources
MAX_STORAGE_ERRORS = 20


def run(config: Path, instance: int | None, env: Mapping[str, str] | None = None) -> int:
    settings = core_settings.load(config).for_instance(instance)
    core = settings.core
    log = logs.setup(core.log_level, "core")
    notifier = Notifier.from_environ(env if env is not None else os.environ)
    clock = SystemClock()
    store = open_store(core.database, core.busy_timeout_s)
    metrics = CoreMetrics()
    worker = Worker(settings, store, clock=clock, metrics=metrics, load=system_load(clock))

    def health() -> tuple[bool, dict[str, Any]]:
        age = clock.monotonic() - worker.heartbeat
        stalled = worker.stalled_sources()
        detail: dict[str, Any] = {
            "instance": settings.instance,
            "sources": len(settings.sources),
            "inFlight": len(worker.in_flight),
            "loopAgeSeconds": round(age, 3),
            "stalledSources": len(stalled),
        }
        if stalled and age < STALL_S:  # alive (200), but sources hold their fetch slots
            detail.update(status="degraded", stalled=stalled[:STALLED_NAMED])
        return age < STALL_S, detail

    try:
        server = start_metrics(core.metrics_listen, settings.metrics_port, metrics, health)
    except OSError as exc:
        store.close()
        raise AtlasError(
            f"cannot serve metrics on {core.metrics_listen}:{settings.metrics_port}: "
            f"{exc.strerror or exc}"
        ) from exc

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: finishing the batch in flight", signal.Signals(signum).name)
        worker.stop()
        arm_deadline()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    try:
        worker.start()
        notifier.ready(f"ingesting {len(settings.sources)} sources")
        log.info(
            "replica %d/%d: %d sources, metrics on %s:%d",
            settings.instance,
            core.replicas,
            len(settings.sources),
            core.metrics_listen,
            settings.metrics_port,
        )
        _loop(worker, notifier, clock, len(settings.sources), core.database)
        notifier.stopping()
        abandoned = worker.shutdown(GRACE_S)
    finally:
        server.stop()
        store.close()
    logging.getLogger("atlas.core").info("stopped after %d batches", worker.stored_batches)
    if abandoned:  # their threads sit in a socket read: do not wait for them at exit
        exit_now(0)
    return 0


def _loop(worker: Worker, notifier: Notifier, clock: SystemClock, sources: int, db: Path) -> None:
    """Until stopped: fetch and store, ping the watchdog, keep STATUS= current."""
    interval = notifier.watchdog_interval
    last_ping = clock.monotonic()
    shown = ""
    while not worker.stopping.is_set():
        worker.tick(1.0 if interval is None else min(1.0, interval / 2))
        if worker.storage_errors >= MAX_STORAGE_ERRORS:
            raise StorageError(f"{worker.storage_errors} writes in a row failed on {db}")
        if interval is not None and clock.monotonic() - last_ping >= interval:
            notifier.watchdog()
            last_ping = clock.monotonic()
        if (line := status_line(worker, sources)) != shown:
            notifier.status(line)
            shown = line


def status_line(worker: Worker, sources: int) -> str:
    """STATUS=: what ``systemctl status`` shows of this replica now."""
    stalled = len(worker.stalled_sources())
    line = f"ingesting {sources} sources: {worker.stored_batches} batches stored"
    if worker.waiting:
        line += f", {worker.waiting} due"
    if stalled:
        line += f", {stalled} stalled"
    return line
