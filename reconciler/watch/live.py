"""Drift seen in seconds: watch the host between polls and wake the loop on a change.

Two watchers run beside ``atlas reconcile --watch``:

- watchdog (inotify) on the folders that hold the files Atlas wrote — the unit
  folder, the config folder with its env files (the parents of every file in the
  inventory, under ``--root``): a write, rename, removal or chmod of one of those
  files is looked at once its burst has settled (``changes.SETTLE_WINDOW``);
- one ``systemctl show -p Id,LoadState,ActiveState,SubState`` for all the units
  Atlas starts, every ``changes.UNIT_POLL`` seconds.

What is drift is decided in ``reconciler.watch.changes``: a file that differs from
what Atlas wrote, a unit that went down with no restart pending (``Restart=`` at
work is not drift), and not a unit the operator suspended. On drift the loop is
woken and its self-heal cycle corrects it (or reports it, with self-heal off); each
drifted resource seen here is counted in ``atlas_live_drift_total{kind}``.

Atlas's own writes never wake it: from the moment a cycle begins
(``Reconciler.started`` moves) until the daemon hands over the cycle's end
(``after_cycle``: the new inventory and the units the cycle left up) the watcher
only collects paths, and what it collected is then compared with the new
inventory — a file Atlas just wrote matches it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from reconciler.drift import DRIFT_KINDS, DriftItem
from reconciler.errors import ReconcilerError, RuntimeUnavailable
from reconciler.host.paths import HostLayout
from reconciler.host.runtime import Runtime, Systemctl
from reconciler.inventory import Inventory
from reconciler.loop import Reconciler
from reconciler.observe import ObservedFile, read_file
from reconciler.record import CycleResult, Log
from reconciler.watch.changes import (
    SETTLE_WINDOW,
    UNIT_POLL,
    Burst,
    Suspended,
    UnitSentry,
    file_drift,
    never_suspended,
)
from seams import systemd
from seams.clock import Clock, SystemClock
from seams.systemd import UnitState

UnitPoll = Callable[[Sequence[str]], Mapping[str, UnitState]]

LIVE_PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState")
_WRITES = frozenset({"created", "modified", "moved", "deleted", "closed"})


def systemctl_poll(runtime: Runtime, timeout: float = 5.0) -> UnitPoll:
    """The units' states in one ``systemctl show`` (any other Runtime: its own)."""

    def poll(names: Sequence[str]) -> Mapping[str, UnitState]:
        if not isinstance(runtime, Systemctl):
            return runtime.unit_states(names)
        try:
            return systemd.show(
                runtime.scope, names, env=runtime.env, timeout=timeout, properties=LIVE_PROPERTIES
            )
        except systemd.SystemctlError as exc:
            raise RuntimeUnavailable(str(exc)) from exc

    return poll


@dataclass(frozen=True)
class Timing:
    clock: Clock | None = None  # None: the system clock
    unit_poll: float = UNIT_POLL
    window: float = SETTLE_WINDOW


class LiveWatcher:
    def __init__(
        self,
        layout: HostLayout,
        poll_units: UnitPoll,
        on_drift: Callable[[list[DriftItem]], None],
        started: Callable[[], int],
        *,
        suspended: Suspended = never_suspended,
        log: Log = lambda level, message: None,
        timing: Timing | None = None,
    ) -> None:
        """``started``: how many cycles the loop has begun; ``suspended(unit)``: the
        operator suspended that unit (its stop is not drift)."""
        self.layout = layout
        self.poll_units = poll_units
        self.on_drift = on_drift
        self.started = started
        self.suspended = suspended
        timing = timing or Timing()
        self.clock = timing.clock or SystemClock()
        self.log = log
        self.unit_poll = timing.unit_poll
        self.burst = Burst(timing.window)
        self.sentry = UnitSentry()
        self.inventory: Inventory | None = None  # None: no baseline yet
        self.host_key = b""
        self.generation = -1
        self.units: list[str] = []
        self._next_poll = 0.0
        self._poll_failing = False
        self._lock = threading.Lock()
        self._nudge = threading.Event()
        self._stop = threading.Event()
        self._disk: dict[str, PurePosixPath] = {}  # on-disk path -> inventory path
        self._watched: set[Path] = set()
        self._thread = threading.Thread(target=self._run, name="live-drift", daemon=True)
        self._handler = _Handler(self._on_event)
        self.observer = Observer()

    # ---------------------------------------------------------------- the loop's side

    def after_cycle(self, rec: Reconciler, result: CycleResult) -> None:
        """Called on the loop's thread when a cycle has ended: the new baseline."""
        self.rebaseline(rec.store.inventory(), rec.store.host_key, result.units or {}, rec.started)

    def rebaseline(
        self, inventory: Inventory, host_key: bytes, units_up: Mapping[str, bool], generation: int
    ) -> None:
        disk = {str(self.layout.on_disk(p)): p for p in inventory.files}
        with self._lock:
            self.inventory, self.host_key, self.generation = inventory, host_key, generation
            self.units = sorted(u.name for u in inventory.units.values() if u.start)
            self.sentry.baseline(self.units, units_up)
            self._disk = disk
            self._next_poll = 0.0
        for folder in sorted({Path(p).parent for p in disk} - self._watched):
            if folder.is_dir():
                self.observer.schedule(self._handler, str(folder), recursive=False)
                self._watched.add(folder)
        self._nudge.set()

    def start(self) -> None:
        self.observer.daemon = True
        self.observer.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._nudge.set()
        self.observer.stop()
        self.observer.join(timeout=5)
        self._thread.join(timeout=5)

    # ---------------------------------------------------------------- the watchers' side

    def quiet(self) -> bool:
        """No baseline yet, or a cycle began that has not been handed over."""
        return self.inventory is None or self.started() != self.generation

    def _on_event(self, paths: Sequence[str]) -> None:
        with self._lock:
            hits = {self._disk[p] for p in paths if p in self._disk}
            if hits:
                self.burst.touched(hits, self.clock.monotonic())
        if hits:
            self._nudge.set()

    def step(self, now: float) -> float:
        """One look: poll the units when due, act on a settled burst; returns how long
        to wait before the next look."""
        if self.quiet():
            return self.unit_poll
        if now >= self._next_poll:
            self._next_poll = now + self.unit_poll
            states = self._states()
            with self._lock:
                self.burst.went_down(self.sentry.observe(states, self.suspended), now)
        with self._lock:
            due = self.burst.due(now)
            paths, units = self.burst.take() if due else (set(), [])
            inventory, key = self.inventory or Inventory(), self.host_key
        if due:
            items = units + file_drift(inventory, paths, self._read, key)
            if items and not self.quiet():  # a cycle that began meanwhile sees it itself
                self.on_drift(items)
        with self._lock:
            left = self.burst.remaining(now)
        wait = self._next_poll - now
        return min(wait, left) if left is not None else wait

    def _read(self, path: PurePosixPath) -> ObservedFile:
        return read_file(self.layout, path)

    def _states(self) -> Mapping[str, UnitState]:
        if not self.units:
            return {}
        try:
            states = self.poll_units(self.units)
        except ReconcilerError as exc:
            if not self._poll_failing:
                self.log("warning", f"live drift watch cannot read the units' states: {exc}")
            self._poll_failing = True
            return {}
        self._poll_failing = False
        return states

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self.step(self.clock.monotonic())
            except Exception as exc:  # noqa: BLE001 - the watcher must outlive a bad look
                self.log("error", f"live drift watch: {exc}")
                wait = self.unit_poll
            self._nudge.wait(max(0.01, wait))
            self._nudge.clear()


class _Handler(FileSystemEventHandler):
    """The paths of every write (reads, such as the loop's own observe, are no news)."""

    def __init__(self, on_event: Callable[[Sequence[str]], None]) -> None:
        super().__init__()
        self.on_event = on_event

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in _WRITES and not event.is_directory:
            paths = (event.src_path, event.dest_path)
            self.on_event([os.fsdecode(p) for p in paths if p])


def for_daemon(
    rec: Reconciler,
    wake: Callable[[], None],
    log: Log,
    suspended: Suspended = never_suspended,
) -> LiveWatcher:
    """The watcher of ``rec``'s host: drift is logged, counted and wakes the loop."""
    counter = rec.metrics.live_drift
    for kind in DRIFT_KINDS:
        counter.labels(kind)
    then = "healing it now" if rec.options.self_heal else "reporting it now"

    def drifted(items: list[DriftItem]) -> None:
        for item in items:
            counter.labels(item.kind).inc()
        shown = "; ".join(f"{i.kind} {i.target}" for i in items[:5])
        more = f" and {len(items) - 5} more" if len(items) > 5 else ""
        log("info", f"drift seen: {shown}{more}; {then}")
        wake()

    return LiveWatcher(
        rec.host.layout,
        systemctl_poll(rec.host.runtime),
        drifted,
        lambda: rec.started,
        suspended=suspended,
        log=log,
        timing=Timing(clock=rec.host.clock),
    )
