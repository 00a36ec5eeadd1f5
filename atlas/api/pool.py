"""Where the API's SQLite work runs: worker threads, never the event loop.

A search can take its whole budget (``reader.QUERY_BUDGET_S``); on the loop, fifty of
them at once left ``/healthz`` and ``/readyz`` waiting seconds behind them. Data
queries run in at most ``QUERY_THREADS`` threads; ``/readyz`` has its own thread, so
it never queues behind searches. A request that waited longer than its budget for
a thread is not run at all: it gets the same clear 503 as one interrupted for
running over (``StorageError``), and the queue drains instead of growing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

from atlas.api import reader
from atlas.errors import StorageError

T = TypeVar("T")
QUERY_THREADS = 4  # SQLite readers that run at once (2 cores; the rest would only queue)


class QueryPool:
    def __init__(self, threads: int = QUERY_THREADS) -> None:
        self._queries = CapacityLimiter(threads)
        self._probe = CapacityLimiter(1)

    async def query(self, work: Callable[[], T]) -> T:
        """``work()`` in a query thread, or StorageError when the wait ate its budget."""
        queued = time.monotonic()

        def timed() -> T:
            waited = time.monotonic() - queued
            if waited > reader.QUERY_BUDGET_S:
                raise StorageError(
                    f"server busy: waited {waited:.1f}s for a query thread"
                    f" (budget {reader.QUERY_BUDGET_S:g}s); try again"
                )
            return work()

        return await anyio.to_thread.run_sync(timed, limiter=self._queries)

    async def probe(self, work: Callable[[], T]) -> T:
        """``work()`` in the readiness probe's own thread."""
        return await anyio.to_thread.run_sync(work, limiter=self._probe)
