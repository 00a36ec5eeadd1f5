"""The worker loop: claim due sources, fetch them on a thread pool, store each
result in one transaction, keep the metrics, and stop cleanly.

The loop runs on the main thread and does the worker's writes of sources and items.
A tick: store what finished, renew the leases of the fetches in flight (every
quarter of ``leaseSeconds``), note circuit changes, then claim due sources while
there is room (``fetch.concurrency``) and submit them — skipping hosts whose circuit
is open or whose rate limit has no token yet: those stay due and count in
``atlas_ingest_backlog``. Every replica may claim every source (``atlas.core.leases``);
a result whose lease was taken over meanwhile is dropped (``LeaseLost``). Breakers
and rate limits are the database's (``atlas.resilience.shared``), on a connection of
their own used by the fetch threads too, so the replicas share them.
``stop()`` (SIGTERM) ends submissions (retry waits are cut short); ``shutdown()``
stores what the jobs in flight finish within its grace, then cuts the rest short
(within ``atlas.core.deadline.SLICE_S``; their leases are released, their sources
stay due) and closes everything.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from typing import Any

import httpx

from atlas.core.fetch import Fetcher
from atlas.core.ingest import Ingestor
from atlas.core.leases import Leases, holder_id
from atlas.core.metrics import CoreMetrics
from atlas.core.model import Job, JobResult
from atlas.core.scheduler import Schedule
from atlas.core.settings import InstanceSettings
from atlas.core.store import Store
from atlas.errors import AtlasError, FetchTimedOut, LeaseLost, StorageError
from atlas.resilience.breaker import State
from atlas.resilience.ratelimit import LoadProbe
from atlas.resilience.shared import SharedBreakers, SharedLimiter, SharedState
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
        self.shared = SharedState(store.path, core.busy_timeout_s)
        self.breakers = SharedBreakers(
            core.breaker, self.clock, self.shared, self._on_circuit, trial_timeout_s=core.lease_s
        )
        self.limiter = SharedLimiter(core.rate_policy, self.clock, self.shared, load)
        self.leases = Leases(store.conn, holder_id(settings.instance), core.lease_s)
        self._renewed = self.clock.monotonic()
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
        """Record the sources and give every metric series a value."""
        core = self.settings.core
        self.store.sync_sources(
            self.settings.sources, [s.name for s in core.sources], self.clock.wall()
        )
        hosts = sorted({s.host for s in self.settings.sources if s.host})
        self.metrics.declare_sources(self.store.source_errors(self.names), hosts)
        self.metrics.dlq.set(self.store.dlq_size(self.names))
        self.breakers.declare(hosts)  # closed, unless another replica knows better

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
        for job in self.in_flight.values():
            self._release(job)
        if abandoned:
            log.warning("abandoning %d fetch(es) still running; their sources stay due", abandoned)
            self.executor.shutdown(wait=False, cancel_futures=True)
            return abandoned
        self.executor.shutdown(wait=True)
        self.fetcher.close()
        self.shared.close()
        return 0

    def _wait_in_flight(self, end: float | None) -> None:
        """Store the jobs in flight as they finish, until ``end`` (None: all have)."""
        while self.in_flight and (end is None or time.monotonic() < end):
            left = 1.0 if end is None else max(0.0, min(1.0, end - time.monotonic()))
            done, _ = wait(list(self.in_flight), timeout=left)
            self._harvest(done)
            self._renew()
            self.heartbeat = self.clock.monotonic()

    # ---- the loop

    def tick(self, block_s: float = 1.0) -> int:
        """One round: store finished jobs, submit due ones, wait up to ``block_s``.
        Returns how many fetches it started."""
        self.heartbeat = self.clock.monotonic()
        self._harvest([f for f in self.in_flight if f.done()])
        self._renew()
        submitted = 0
        try:
            self._record_circuits()
            if not self.stopping.is_set():
                submitted = self._submit_due()
        except StorageError as exc:  # busy or broken database: claim again next tick
            self.storage_errors += 1
            log.error("%s; sources are claimed again at the next tick", exc)
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
        """Claim what may be fetched now among the due sources no one holds, and
        submit what was claimed; the rest stays due (the backlog)."""
        busy = {job.source.name for job in self.in_flight.values()}
        due = self.store.due(self.settings.sources, self.clock.wall())
        due = [j for j in due if j.source.name not in busy]
        room = self.settings.core.fetch.concurrency - len(self.in_flight)
        ready: dict[str | None, bool] = {None: True}  # per host, asked once a tick
        wanted: list[Job] = []
        for job in due:
            host = job.source.host
            if len(wanted) < room and ready.setdefault(host, self._host_ready(host)):
                wanted.append(job)
        tokens = self.leases.claim([j.source.name for j in wanted], self.clock.wall(), room)
        submitted = 0
        for job in wanted:
            token = tokens.get(job.source.name)
            if token is None:  # another replica claimed it first
                continue
            leased = replace(job, lease_token=token)
            if not self._may_fetch(leased):
                self._release(leased)
                continue
            self.in_flight[self.executor.submit(self.ingestor.run, leased)] = leased
            submitted += 1
        self.waiting = len(due) - submitted
        self.metrics.backlog.set(self.waiting)
        return submitted

    def _host_ready(self, host: str | None) -> bool:
        """Would the host take a call now? (Asks without taking a token or a trial.)"""
        if host is None:
            return True
        return self.limiter.wait_s(host) <= 0 and self.breakers.retry_after(host) <= 0

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

    # ---- leases

    def _renew(self) -> None:
        """Every quarter of the lease period: extend the leases of the fetches in flight."""
        if self.clock.monotonic() - self._renewed < self.settings.core.lease_s / 4:
            return
        self._renewed = self.clock.monotonic()
        held = {
            job.source.name: job.lease_token
            for job in self.in_flight.values()
            if job.lease_token is not None
        }
        try:
            lost = self.leases.renew(held, self.clock.wall())
        except StorageError as exc:
            log.error("%s; the leases are renewed at the next tick", exc)
            return
        for name in sorted(lost):
            log.warning(
                "lease of source %s lost (expired and taken over): its fetch in flight"
                " will not be stored",
                name,
            )

    def _release(self, job: Job) -> None:
        """Give up the lease of a job that stored nothing: its source stays due."""
        if job.lease_token is None:
            return
        try:
            self.leases.release(job.source.name, job.lease_token)
        except StorageError as exc:
            log.error("%s; it expires in %.0fs", exc, self.settings.core.lease_s)

    def _harvest(self, done: Any) -> None:
        for future in done:
            job = self.in_flight.pop(future)
            try:
                result = future.result()
            except StorageError as exc:  # the shared breaker or rate limit was unwritable
                log.error("fetch of %s stopped: %s; it stays due", job.source.name, exc)
                self._release(job)
                continue
            except Exception:  # a bug in a job must not kill the loop or lose the source
                log.exception("fetch of %s crashed; it stays due", job.source.name)
                self._release(job)
                continue
            self._store(result)

    def _store(self, result: JobResult) -> None:
        name = result.source.name
        if result.status == "cancelled":
            log.info("fetch of %s cancelled by shutdown; it stays due", name)
            self._release(result.job)
            return
        try:
            applied = self.store.apply(result, self.schedule)
        except LeaseLost as exc:  # another replica holds the source now
            self.metrics.leases_lost.inc()
            log.warning("%s", exc)
            return
        except StorageError as exc:  # nothing was committed: the source stays due
            self.storage_errors += 1
            log.error("%s; %s will be fetched again", exc, name)
            self._release(result.job)
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
                self._show_rate(result.job.source.host)

    def _show_rate(self, host: str) -> None:
        try:
            self.metrics.rate.labels(host).set(self.limiter.rate(host))
        except StorageError as exc:  # only the gauge waits for the next store
            log.error("%s", exc)

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
        for host, state in latest.items():  # the shared breaker has stored it
            log.warning("circuit of %s is now %s", host, state.value)
