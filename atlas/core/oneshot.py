"""Fetch chosen sources once, now, outside the worker loop: what ``atlas dlq retry``
and the background sweep of ``atlas services run`` do with dead letters.

Each source goes through the same ingestion job (retries included) and the same
one-transaction store as in the worker, so a success resolves its dead letter and
resets its error count, and a failure bumps both. The circuit breakers and rate
limits are fresh ones: an operator's explicit retry is not held back by the
worker's view of a host. Each source is leased for its fetch like a replica would
(``atlas.core.leases``): one a replica is fetching now is left to it ("leased"),
and a replica cannot claim one while it is retried here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import httpx

from atlas.core.fetch import Fetcher
from atlas.core.ingest import Ingestor
from atlas.core.leases import Leases, holder_id
from atlas.core.model import Job
from atlas.core.scheduler import Schedule
from atlas.core.settings import CoreSettings
from atlas.core.store import Store
from atlas.errors import LeaseLost
from atlas.resilience.breaker import Breakers
from atlas.resilience.ratelimit import AdaptiveLimiter
from seams.clock import Clock, SystemClock


@dataclass(frozen=True)
class Outcome:
    source: str
    ok: bool
    status: str  # ok | not_modified | unchanged | failed | unknown-source | leased
    message: str
    new: int = 0
    updated: int = 0


def fetch_now(
    settings: CoreSettings,
    store: Store,
    names: Sequence[str],
    clock: Clock | None = None,
    transport: httpx.BaseTransport | None = None,
) -> list[Outcome]:
    clock = clock or SystemClock()
    by_name = {s.name: s for s in settings.sources}
    fetcher = Fetcher(settings.fetch, transport)
    ingestor = Ingestor(
        fetcher,
        Breakers(settings.breaker, clock),
        AdaptiveLimiter(settings.rate_policy, clock),
        settings.retry,
        clock,
        wait=_sleeper(clock),
        rand=random.random,
    )
    schedule = Schedule(settings.max_freshness_s, settings.error_backoff.cap_s)
    leases = Leases(store.conn, holder_id("retry"), settings.lease_s)
    out: list[Outcome] = []
    try:
        for name in names:
            source = by_name.get(name)
            if source is None:
                out.append(Outcome(name, False, "unknown-source", "not in the config any more"))
                continue
            token = leases.take(name, clock.wall())
            if isinstance(token, str):
                out.append(Outcome(name, False, "leased", f"being fetched by {token} now"))
                continue
            job = replace(store.job(source) or Job(source), lease_token=token)
            result = ingestor.run(job)
            try:
                applied = store.apply(result, schedule)
            except LeaseLost as exc:
                out.append(Outcome(name, False, "leased", str(exc)))
                continue
            if result.status == "failed":
                out.append(Outcome(name, False, "failed", str(result.error)))
            else:
                c = applied.counts
                out.append(
                    Outcome(
                        name,
                        True,
                        result.status,
                        f"{c.new} new, {c.updated} updated",
                        c.new,
                        c.updated,
                    )
                )
    finally:
        fetcher.close()
    return out


def _sleeper(clock: Clock) -> Callable[[float], bool]:
    """The ingestor's ``wait``: the clock's sleep, never cut short."""

    def wait(seconds: float) -> bool:
        clock.sleep(seconds)
        return True

    return wait
