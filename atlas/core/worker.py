"""The worker loop: pick due sources, fetch them on a thread pool, store each
result in one transaction, keep the metrics, and stop cleanly.

The loop runs on the main thread and is the only writer to the database. A tick:
store what finished, note circuit changes, then submit due sources while there is
room (``fetch.concurrency``), skipping hosts whose circuit is open or whose rate
limit has no token yet — those stay due and count in ``atlas_ingest_backlog``.
``stop()`` (SIGTERM) ends submissions (retry waits are cut short); ``shutdown()``
stores what the jobs in flight finish within its grace, then cuts the rest short
(within ``atlas.core.deadline.SLICE_S``; their sources stay due) and closes everything.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import httpx

from atlas.core.fetch import Fetcher
from atlas.core.ingest import Ingestor
from atlas.core.metrics import CoreMetrics
from atlas.core.model import Job, JobResult
from atlas.core.scheduler import Schedule
from atlas.core.settings import InstanceSettings
from atlas.core.store import Store
from atlas.errors import AtlasError, FetchTimedOut, StorageError
from atlas.resilience.breaker import Breakers, State
from atlas.resilience.ratelimit import AdaptiveLimiter, LoadProbe
from seams.clock import Clock, SystemClock

log = logging.getLogger("atlas.core")
DLQ_REFRESH_S = 5.0
CUT_S = 0.5  # how long fetches cut short by shutdown get to end (they take SLICE_S)


class Worker:
    def __init__(
        self,
        settings: InstanceSettings,
        store: Store,
        *,
        clock: Clock | None = None,
        metrics: CoreMetrics | None = None,
        load: LoadProbe | None = None,
        rand: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        core = settings.core
        self.store = store
        self.clock = clock or SystemClock()
        self.metrics = metrics or CoreMetrics()
        self.schedule = Schedule(core.max_freshness_s, core.error_backoff.cap_s)
        self.stopping = threading.Event()
        self.cut_short = threading.Event()  # set by shutdown: the fetches in flight end now
        self.stop_asked_at = 0.0  # time.monotonic() of the first stop()
        self._stalled: set[str] = set()  # sources whose latest attempt timed out
        self._stalled_lock = threading.Lock()
        self._circuit_changes: queue.SimpleQueue[tuple[str, State]] = queue.SimpleQueue()
        self.breakers = Breakers(core.breaker, self.clock, self._on_circuit)
        self.limiter = AdaptiveLimiter(core.rate_policy, self.clock, load)
        if load is not None:
            self.metrics.watch_load(load)
        self.fetcher = Fetcher(core.fetch, transport, self.cut_short)
        self.ingestor = Ingestor(
            self.fetcher,
            self.breakers,
            self.limiter,
            core.retry,
            self.clock,
            wait=lambda seconds: not self.stopping.wait(seconds),
            rand=rand,
            on_fetch=self.metrics.fetch_duration.observe,
            on_outcome=self._on_outcome,
        )
        self.executor = ThreadPoolExecutor(
            max_workers=core.fetch.concurrency, thread_name_prefix="fetch"
        )
        self.in_flight: dict[Future[JobResult], Job] = {}
        self.names = [s.name for s in settings.sources]
        self.heartbeat = self.clock.monotonic()
        self._dlq_checked = float("-inf")
        self.stored_batches = 0
        self.waiting = 0
        self.storage_errors = 0  # consecutive failed writes

    # ---- lifecycle

    def start(self) -> None:
        """Record this replica's sources and give every metric series a value."""
        core = self.settings.core
        self.store.sync_sources(
            self.settings.sources, [s.name for s in core.sources], self.clock.wall()
        )
        hosts = sorted({s.host for s in self.settings.sources if s.host})
        self.metrics.declare_sources(self.store.source_errors(self.names), hosts)
        self.metrics.dlq.set(self.store.dlq_size(self.names))
        for host in hosts:
            self.store.set_circuit(host, State.CLOSED.value, self.clock.wall())

    def stop(self) -> None:
        """Stop submitting fetches; the jobs in flight finish (waits cut short)."""
        if not self.stopping.is_set():
            self.stop_asked_at = time.monotonic()
            self.stopping.set()

    def shutdown(self, grace_s: float | None = None) -> int:
        """Store what finishes within ``grace_s`` of the stop (None: wait for all); then
        cut the fetches still running short (they end within ``CUT_S``, their sources
        stay due) and abandon any still stuck (a connect). Returns how many were."""
        self.stop()
        self._wait_in_flight(None if grace_s is None else self.stop_asked_at + grace_s)
        if self.in_flight:
            log.info("cutting %d fetch(es) short; their sources stay due", len(self.in_flight))
            self.cut_short.set()
            self._wait_in_flight(time.monotonic() + CUT_S)
        self._record_circuits()
        abandoned = len(self.in_flight)
        if abandoned:
            log.warning("abandoning %d fetch(es) still running; their sources stay due", abandoned)
            self.executor.shutdown(wait=False, cancel_futures=True)
            return abandoned
        self.executor.shutdown(wait=True)
        self.fetcher.close()
        return 0

    def _wait_in_flight(self, end: float | None) -> None:
        """Store the jobs in flight as they finish, until ``end`` (None: all have)."""
        while self.in_flight and (end is None or time.monotonic() < end):
            left = 1.0 if end is None else max(0.0, min(1.0, end - time.monotonic()))
            done, _ = wait(list(self.in_flight), timeout=left)
            self._harvest(done)
            self.heartbeat = self.clock.monotonic()

    # ---- the loop

    def tick(self, block_s: float = 1.0) -> int:
        """One round: store finished jobs, submit due ones, wait up to ``block_s``.
        Returns how many fetches it started."""
        self.heartbeat = self.clock.monotonic()
        self._harvest([f for f in self.in_flight if f.done()])
        self._record_circuits()
        submitted = 0 if self.stopping.is_set() else self._submit_due()
        if self.clock.monotonic() - self._dlq_checked > DLQ_REFRESH_S:
            self._refresh_dlq()
        if self.in_flight:
            done, _ = wait(list(self.in_flight), timeout=block_s, return_when=FIRST_COMPLETED)
            self._harvest(done)
        elif block_s > 0:
            self.stopping.wait(self._idle_wait(block_s))
        return submitted

    def run_until_idle(self, timeout_s: float = 30.0) -> None:
        """Tick until nothing is in flight and nothing more can start (tests, one-shot runs)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            was_busy = bool(self.in_flight)
            if self.tick(0.05) == 0 and not was_busy and not self.in_flight:
                return

    def _idle_wait(self, block_s: float) -> float:
        if self.waiting:  # due but held back (rate limit, open circuit): look again soon
            return min(block_s, 0.05)
        next_at = self.store.next_check_at(self.settings.sources)
        if next_at is None:
            return block_s
        return max(0.0, min(block_s, next_at - self.clock.wall()))

    def _submit_due(self) -> int:
        busy = {job.source.name for job in self.in_flight.values()}
        due = self.store.due(self.settings.sources, self.clock.wall())
        waiting = submitted = 0
        room = self.settings.core.fetch.concurrency - len(self.in_flight)
        for job in due:
            name = job.source.name
            if name in busy:
                continue
            if room <= 0 or not self._may_fetch(job):
                waiting += 1
                continue
            future = self.executor.submit(self.ingestor.run, job)
            self.in_flight[future] = job
            busy.add(name)
            room -= 1
            submitted += 1
        self.waiting = waiting
        self.metrics.backlog.set(waiting)
        return submitted

    def _may_fetch(self, job: Job) -> bool:
        host = job.source.host
        if host is None:
            return True
        if self.limiter.wait_s(host) > 0 or not self.breakers.allow(host):
            return False
        if not self.limiter.try_acquire(host):
            self.breakers.release(host)
            return False
        return True

    def _harvest(self, done: Any) -> None:
        for future in done:
            job = self.in_flight.pop(future)
            try:
                result = future.result()
            except Exception:  # a bug in a job must not kill the loop or lose the source
                log.exception("fetch of %s crashed; it stays due", job.source.name)
                continue
            self._store(result)

    def _store(self, result: JobResult) -> None:
        name = result.source.name
        if result.status == "cancelled":
            log.info("fetch of %s cancelled by shutdown; it stays due", name)
            return
        try:
            applied = self.store.apply(result, self.schedule)
        except StorageError as exc:  # nothing was committed: the source stays due
            self.storage_errors += 1
            log.error("%s; %s will be fetched again", exc, name)
            return
        self.storage_errors = 0
        self.stored_batches += 1
        self.metrics.fetches.labels(name, result.status).inc()
        self.metrics.stored(name, applied.counts)
        if result.skipped:
            self.metrics.skipped.labels(name).inc(result.skipped)
            log.info("%s: %d empty or cut-off entries skipped", name, result.skipped)
        self.metrics.source_errors.labels(name).set(applied.errors)
        if result.status == "failed":
            log.warning(
                "source %s failed (%d in a row): %s; next check in %.0fs",
                name,
                applied.errors,
                result.error,
                applied.next_check_at - result.finished_at,
            )
            self._refresh_dlq()
        else:
            if applied.resolved:
                self._refresh_dlq()
            c = applied.counts
            log.info(
                "source %s: %s, %d new, %d updated, %d unchanged",
                name,
                result.status,
                c.new,
                c.updated,
                c.unchanged,
            )
            if result.job.source.host:
                self.metrics.rate.labels(result.job.source.host).set(
                    self.limiter.rate(result.job.source.host)
                )

    def stalled_sources(self) -> list[str]:
        """The sources whose latest fetch attempt ran out of time (their server
        stalled): they hold a fetch slot for the whole deadline on every try."""
        with self._stalled_lock:
            return sorted(self._stalled)

    def _on_outcome(self, name: str, error: AtlasError | None) -> None:
        """After each HTTP attempt (in its fetch thread): note whether it stalled."""
        stalls = isinstance(error, FetchTimedOut)
        with self._stalled_lock:
            known = name in self._stalled
            if stalls:
                self._stalled.add(name)
            else:
                self._stalled.discard(name)
            self.metrics.stalled.set(len(self._stalled))
        if stalls and not known:
            log.warning("source %s stalls: %s", name, error)
        elif known and not stalls:
            log.info("source %s no longer stalls", name)

    def _refresh_dlq(self) -> None:
        self._dlq_checked = self.clock.monotonic()
        self.metrics.dlq.set(self.store.dlq_size(self.names))

    def _on_circuit(self, host: str, state: State) -> None:
        self.metrics.circuit.labels(host).set(state.gauge)
        self._circuit_changes.put((host, state))

    def _record_circuits(self) -> None:
        self.breakers.states()  # an open circuit whose period ended becomes half-open
        latest: dict[str, State] = {}
        while True:
            try:
                host, state = self._circuit_changes.get_nowait()
            except queue.Empty:
                break
            latest[host] = state
        for host, state in latest.items():
            log.warning("circuit of %s is now %s", host, state.value)
            self.store.set_circuit(host, state.value, self.clock.wall())
