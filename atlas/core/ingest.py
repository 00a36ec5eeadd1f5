"""One ingestion job: fetch a due source through the resilience policies and parse
what came back. Runs in a worker thread; writes nothing (the result goes back to
the loop, which stores it in one transaction).

Per HTTP attempt: the host's circuit breaker must allow it and its rate limit must
have a token (the loop took both for the first attempt); the outcome feeds the
breaker (network errors, timeouts and 5xx count as failures; any other answer
means the host is up) and the adaptive rate limit. Temporary failures are retried
per the ``RetryPolicy``; when shutdown cuts a wait short, the job is *cancelled*
(nothing stored, the source stays due).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from atlas.core import caching, parse
from atlas.core.fetch import FEED_ACCEPT, PAGE_ACCEPT, Fetcher
from atlas.core.model import Job, JobResult, Response
from atlas.errors import (
    CircuitOpen,
    FetchRejected,
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

    def run(self, job: Job) -> JobResult:
        started = self.clock.monotonic()
        source = job.source
        if not source.remote:
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
        attempts = [0]
        cancelled = [False]
        last_failure: list[TemporaryFailure] = []

        def sleep(seconds: float) -> bool:
            if self.wait(seconds):
                return True
            cancelled[0] = True
            return False

        def attempt() -> Response:
            host = source.host or ""
            if attempts[0] > 0:  # the loop granted the first attempt; later ones ask
                if not self.breakers.allow(host):
                    raise CircuitOpen(host, self.breakers.retry_after(host))
                while not self.limiter.try_acquire(host):
                    if not sleep(self.limiter.wait_s(host)):
                        self.breakers.release(host)
                        raise _Cancelled
            attempts[0] += 1
            try:
                return self._fetch(job, host)
            except TemporaryFailure as exc:
                last_failure[:] = [exc]
                raise

        def failed(
            exc: TemporaryFailure | PermanentFailure, retry_after: float | None
        ) -> JobResult:
            return JobResult(
                job,
                "failed",
                self.clock.wall(),
                self.clock.monotonic() - started,
                http_status=getattr(exc, "status", None),
                error=exc,
                retry_after=retry_after,
                attempts=attempts[0],
            )

        try:
            response = call_with_retries(attempt, self.retry, sleep, self.rand)
        except _Cancelled:
            return JobResult(job, "cancelled", self.clock.wall(), 0.0, attempts=attempts[0])
        except TemporaryFailure as exc:
            if cancelled[0]:
                return JobResult(job, "cancelled", self.clock.wall(), 0.0, attempts=attempts[0])
            if isinstance(exc, CircuitOpen) and last_failure:
                # the circuit opened during our retries: report what the host did
                return failed(last_failure[0], exc.retry_after)
            return failed(exc, getattr(exc, "retry_after", None))
        except PermanentFailure as exc:
            return failed(exc, None)
        return self._parsed(job, response, started, attempts[0], failed)

    def _fetch(self, job: Job, host: str) -> Response:
        source = job.source
        assert source.url is not None
        t0 = self.clock.monotonic()
        try:
            response = self.fetcher.get(
                source.url,
                accept=FEED_ACCEPT if source.type == "rss" else PAGE_ACCEPT,
                etag=job.etag,
                last_modified=job.last_modified,
                timeout_s=source.timeout_s,
                max_body_bytes=source.max_body_bytes,
            )
        except FetchUnavailable as exc:
            self._observe(host, ok=False, started=t0)
            if exc.status == 429:  # the host is up and asks us to slow down
                self.breakers.release(host)
            else:
                self.breakers.failure(host)
            raise
        except FetchRejected:
            self._observe(host, ok=True, started=t0)
            self.breakers.success(host)
            raise
        self._observe(host, ok=True, started=t0)
        self.breakers.success(host)
        return response

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
                items = parse.parse_feed(response.body, response.content_type, response.url)
            else:
                items = (parse.parse_page(response, source.url or response.url),)
        except PermanentFailure as exc:
            return replace(failed(exc, None), http_status=response.status)
        return replace(
            base,
            status="ok",
            finished_at=self.clock.wall(),
            duration_s=self.clock.monotonic() - started,
            items=items,
            body_sha256=digest,
        )
