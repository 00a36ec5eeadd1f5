"""One ingestion job: fetch a due source through the resilience policies and parse
what came back. Runs in a worker thread; writes nothing (the result goes back to
the loop, which stores it in one transaction).

Per HTTP attempt: the host's circuit breaker must allow it and its rate limit must
have a token (the loop took both for the first attempt); the outcome feeds the
breaker (network errors, timeouts and 5xx count as failures; any other answer
means the host is up) and the adaptive rate limit. Temporary failures are retried
per the ``RetryPolicy`` — except a fetch that ran out its whole deadline: a stalled
server would stall the retries too, so the scheduler tries it again later (and the
fetch slot is free meanwhile). When shutdown cuts a wait or a fetch short, the job is
*cancelled* (nothing stored, the source stays due; the breaker hears no verdict).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from atlas.core import access, caching, parse
from atlas.core.fetch import FEED_ACCEPT, PAGE_ACCEPT, Fetcher
from atlas.core.model import Job, JobResult, Response
from atlas.errors import (
    AtlasError,
    CircuitOpen,
    FetchCancelled,
    FetchRejected,
    FetchTimedOut,
    FetchUnavailable,
    PermanentFailure,
    TemporaryFailure,
)
from atlas.resilience.breaker import Breakers
from atlas.resilience.ratelimit import AdaptiveLimiter
from atlas.resilience.retry import RetryPolicy, call_with_retries
from seams.clock import Clock


class _Cancelled(Exception):
    pass


class _Stalled(Exception):
    """An attempt ran out the fetch's deadline: give up without retrying."""

    def __init__(self, failure: FetchTimedOut) -> None:
        super().__init__(str(failure))
        self.failure = failure


@dataclass
class Ingestor:
    fetcher: Fetcher
    breakers: Breakers
    limiter: AdaptiveLimiter
    retry: RetryPolicy
    clock: Clock
    wait: Callable[[float], bool]  # sleep; False when cut short by shutdown
    rand: Callable[[], float]
    on_fetch: Callable[[float], None] | None = None  # seconds of each HTTP attempt
    # after each HTTP attempt: the source's name and what the attempt raised (None: an answer)
    on_outcome: Callable[[str, AtlasError | None], None] | None = None

    def run(self, job: Job) -> JobResult:
        started = self.clock.monotonic()
        if not job.source.remote:
            return self._local(job, started)
        tries = _Tries(self, job, started)
        try:
            response = call_with_retries(tries.attempt, self.retry, tries.sleep, self.rand)
        except _Cancelled:
            return tries.cancelled_result()
        except _Stalled as stalled:
            return tries.failed(stalled.failure, None)
        except TemporaryFailure as exc:
            return tries.gave_up(exc)
        except PermanentFailure as exc:
            return tries.failed(exc, None)
        return self._parsed(job, response, started, tries.count, tries.failed)

    def _local(self, job: Job, started: float) -> JobResult:
        """A source whose text is in the config: one item, unchanged if the text is."""
        source = job.source
        item = parse.text_item(source)
        digest = hashlib.sha256((source.text or "").encode()).hexdigest()
        same = digest == job.body_sha256
        return JobResult(
            job,
            "unchanged" if same else "ok",
            self.clock.wall(),
            self.clock.monotonic() - started,
            items=() if same else (item,),
            body_sha256=digest,
        )

    def _fetch(self, job: Job, host: str) -> Response:
        source = job.source
        url, reach = access.target(source)
        t0 = self.clock.monotonic()
        try:
            response = self.fetcher.get(
                url,
                accept=FEED_ACCEPT if source.type == "rss" else PAGE_ACCEPT,
                etag=job.etag,
                last_modified=job.last_modified,
                timeout_s=source.timeout_s,
                max_body_bytes=source.max_body_bytes,
                access=reach,
            )
        except FetchUnavailable as exc:
            access.redacted(exc, source)
            self._observe(host, ok=False, started=t0)
            self._outcome(source.name, exc)
            if exc.status == 429:  # the host is up and asks us to slow down
                self.breakers.release(host)
            else:
                self.breakers.failure(host)
            raise
        except FetchRejected as exc:
            access.redacted(exc, source)
            self._observe(host, ok=True, started=t0)
            self._outcome(source.name, exc)
            self.breakers.success(host)
            raise
        except FetchCancelled:
            self.breakers.release(host)  # shutdown, not the host, ended it
            raise _Cancelled from None
        self._observe(host, ok=True, started=t0)
        self._outcome(source.name, None)
        self.breakers.success(host)
        return response

    def _outcome(self, name: str, error: AtlasError | None) -> None:
        if self.on_outcome is not None:
            self.on_outcome(name, error)

    def _observe(self, host: str, ok: bool, started: float) -> None:
        latency = self.clock.monotonic() - started
        self.limiter.record(host, ok, latency)
        if self.on_fetch is not None:
            self.on_fetch(latency)

    def _parsed(
        self,
        job: Job,
        response: Response,
        started: float,
        attempts: int,
        failed: Callable[[PermanentFailure, float | None], JobResult],
    ) -> JobResult:
        source = job.source
        now = self.clock.wall()
        base = JobResult(
            job,
            "not_modified",
            now,
            self.clock.monotonic() - started,
            http_status=response.status,
            etag=response.headers.get("etag"),
            last_modified=response.headers.get("last-modified"),
            freshness_s=caching.freshness(response.headers, now),
            attempts=attempts,
        )
        if response.status == 304:
            return base
        digest = hashlib.sha256(response.body).hexdigest()
        if digest == job.body_sha256:
            return replace(base, status="unchanged", body_sha256=digest)
        try:
            if source.type == "rss":
                feed = parse.read_feed(
                    response.body, response.content_type, access.link_base(source, response.url)
                )
            else:
                page = parse.parse_page(response, access.shown_url(source, response.url))
                feed = parse.Feed((page,))
        except PermanentFailure as exc:
            return replace(failed(exc, None), http_status=response.status)
        return replace(
            base,
            status="ok",
            finished_at=self.clock.wall(),
            duration_s=self.clock.monotonic() - started,
            items=feed.items,
            skipped=feed.skipped,
            body_sha256=digest,
        )


@dataclass
class _Tries:
    """The HTTP attempts of one remote job: how many were made, whether shutdown cut
    a wait short, and the last temporary failure a fetch raised."""

    ingestor: Ingestor
    job: Job
    started: float
    count: int = 0
    cancelled: bool = False
    last_failure: TemporaryFailure | None = None

    def sleep(self, seconds: float) -> bool:
        if self.ingestor.wait(seconds):
            return True
        self.cancelled = True
        return False

    def attempt(self) -> Response:
        host = self.job.source.host or ""
        if self.count > 0:  # the loop granted the first attempt; later ones ask
            self._admit(host)
        self.count += 1
        try:
            return self.ingestor._fetch(self.job, host)
        except FetchTimedOut as exc:
            self.last_failure = exc
            if exc.deadline:
                raise _Stalled(exc) from exc
            raise
        except TemporaryFailure as exc:
            self.last_failure = exc
            raise

    def _admit(self, host: str) -> None:
        """Take the host's breaker and a rate-limit token, waiting for the token."""
        breakers, limiter = self.ingestor.breakers, self.ingestor.limiter
        if not breakers.allow(host):
            raise CircuitOpen(host, breakers.retry_after(host))
        while not limiter.try_acquire(host):
            if not self.sleep(limiter.wait_s(host)):
                breakers.release(host)
                raise _Cancelled

    def gave_up(self, exc: TemporaryFailure) -> JobResult:
        """The result when a temporary failure outlasted the retries (or a shutdown)."""
        if self.cancelled:
            return self.cancelled_result()
        if isinstance(exc, CircuitOpen) and self.last_failure is not None:
            # the circuit opened during our retries: report what the host did
            return self.failed(self.last_failure, exc.retry_after)
        return self.failed(exc, getattr(exc, "retry_after", None))

    def cancelled_result(self) -> JobResult:
        return JobResult(
            self.job, "cancelled", self.ingestor.clock.wall(), 0.0, attempts=self.count
        )

    def failed(
        self, exc: TemporaryFailure | PermanentFailure, retry_after: float | None
    ) -> JobResult:
        clock = self.ingestor.clock
        return JobResult(
            self.job,
            "failed",
            clock.wall(),
            clock.monotonic() - self.started,
            http_status=getattr(exc, "status", None),
            error=exc,
            retry_after=retry_after,
            attempts=self.count,
        )
