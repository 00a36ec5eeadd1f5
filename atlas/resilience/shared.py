"""Circuit breakers and adaptive rate limits shared by every instance that opens the
same content database, instead of one private copy per replica.

Each operation (``allow``, ``failure``, ``try_acquire``, ``record`` …) is one
``BEGIN IMMEDIATE`` transaction: read the host's row, run the same state machine as
the private classes (``breaker.CircuitBreaker``, ``ratelimit.TokenBucket``) on it,
write it back. So five failures seen by three replicas open the circuit once, the
half-open trial is one call for the whole fleet, and a host's ``rateLimit`` is what
it gets from all replicas together — not from each.

* ``hosts`` (breaker): ``circuit``, ``failures``, ``opened_at``, ``open_for``,
  ``trials`` and ``trial_at``. A trial taken by an instance that died is given back
  after ``trial_timeout_s``.
* ``host_rates`` (limiter): the AIMD ``rate`` and the bucket's ``tokens`` at ``stamp``.

Times stored are wall-clock seconds (``Clock.wall``): monotonic clocks are not
comparable between hosts, and the content store is meant to become shared by
several (DESIGN.md §8). One connection, used under one lock by the loop and the
fetch threads alike; sqlite3 errors become ``StorageError``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from atlas import db
from atlas.errors import StorageError
from atlas.resilience.breaker import BreakerPolicy, Breakers, CircuitBreaker, Listener, State
from atlas.resilience.ratelimit import (
    AdaptiveLimiter,
    AimdPolicy,
    LoadProbe,
    TokenBucket,
    adapt,
)
from seams.clock import Clock

T = TypeVar("T")
STATES_EVERY_S = 1.0


class _Wall:
    """A clock whose monotonic time is the wall time (shared between processes)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def wall(self) -> float:
        return self.clock.wall()

    def monotonic(self) -> float:
        return self.clock.wall()

    def sleep(self, seconds: float) -> None:
        self.clock.sleep(seconds)


class SharedState:
    """A connection of its own to the content database, one transaction at a time."""

    def __init__(self, path: Path | str, busy_timeout_s: float) -> None:
        self.conn = db.connect(path, (), busy_timeout_s)
        self.lock = threading.Lock()

    @contextmanager
    def transaction(self, what: str) -> Iterator[sqlite3.Connection]:
        with self.lock:
            try:
                with db.transaction(self.conn):
                    yield self.conn
            except sqlite3.Error as exc:
                raise StorageError(f"cannot update the shared {what}: {exc}") from exc

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class SharedBreakers(Breakers):
    """``Breakers`` whose state is the ``hosts`` table."""

    def __init__(
        self,
        policy: BreakerPolicy,
        clock: Clock,
        shared: SharedState,
        on_change: Listener | None = None,
        trial_timeout_s: float = 60.0,
    ) -> None:
        super().__init__(policy, _Wall(clock), on_change)
        self.shared = shared
        self.trial_timeout_s = trial_timeout_s
        self._states_at = float("-inf")

    def _op(self, host: str, fn: Callable[[CircuitBreaker], T]) -> T:
        with self.shared.transaction(f"circuit breaker of {host}") as conn:
            breaker = self._load(conn, host)
            trials = breaker.trials
            out = fn(breaker)
            self._save(conn, host, breaker, trials)
        with self._lock:
            self._changed(host, breaker)
        return out

    def _load(self, conn: sqlite3.Connection, host: str) -> CircuitBreaker:
        breaker = CircuitBreaker(self.policy, self.clock)
        row = conn.execute(
            "SELECT circuit, failures, opened_at, open_for, trials, trial_at"
            " FROM hosts WHERE host = ?",
            (host,),
        ).fetchone()
        if row is not None:
            circuit, failures, opened_at, open_for, trials, trial_at = row
            breaker._state = State(circuit)
            breaker.failures = int(failures)
            breaker.opened_at = float(opened_at)
            breaker.open_for = float(open_for) if open_for is not None else self.policy.open_s
            stale = self.clock.wall() - float(trial_at) > self.trial_timeout_s
            breaker.trials = 0 if stale else int(trials)
        with self._lock:
            self._by_host[host] = breaker
            self._last.setdefault(host, State.CLOSED)
        return breaker

    def _save(self, conn: sqlite3.Connection, host: str, b: CircuitBreaker, before: int) -> None:
        state = b.state
        now = self.clock.wall()
        took = b.trials > before  # a trial was let through now: stamp it
        conn.execute(
            "INSERT INTO hosts (host, circuit, updated_at, failures, opened_at, open_for,"
            " trials, trial_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (host) DO UPDATE"
            " SET circuit = excluded.circuit, failures = excluded.failures,"
            " opened_at = excluded.opened_at, open_for = excluded.open_for,"
            " trials = excluded.trials, trial_at = CASE WHEN ? THEN excluded.trial_at"
            " ELSE hosts.trial_at END,"
            " updated_at = CASE WHEN hosts.circuit = excluded.circuit THEN hosts.updated_at"
            " ELSE excluded.updated_at END",
            [host, state.value, now, b.failures, b.opened_at, b.open_for, b.trials, now, took],
        )

    def allow(self, host: str) -> bool:
        return self._op(host, CircuitBreaker.allow)

    def retry_after(self, host: str) -> float:
        return self._op(host, CircuitBreaker.retry_after)

    def success(self, host: str) -> None:
        self._op(host, CircuitBreaker.success)

    def failure(self, host: str) -> None:
        self._op(host, CircuitBreaker.failure)

    def release(self, host: str) -> None:
        self._op(host, CircuitBreaker.release)

    def state(self, host: str) -> State:
        return self._op(host, lambda b: b.state)

    def states(self) -> dict[str, State]:
        """Every known host's state, read from the database at most once a second
        (the loop asks every tick; in between, the states last read)."""
        now = self.clock.wall()
        if now - self._states_at >= STATES_EVERY_S:
            self._states_at = now
            with self._lock:
                hosts = list(self._by_host)
            for host in hosts:
                self.state(host)
        with self._lock:
            return dict(self._last)

    def declare(self, hosts: list[str]) -> None:
        """Give each host a row (closed) unless another instance already did."""
        with self.shared.transaction("circuit breakers") as conn:
            conn.executemany(
                "INSERT INTO hosts (host, circuit, updated_at) VALUES (?, 'closed', ?)"
                " ON CONFLICT (host) DO NOTHING",
                [(host, self.clock.wall()) for host in hosts],
            )


class SharedLimiter(AdaptiveLimiter):
    """``AdaptiveLimiter`` whose rates and buckets are the ``host_rates`` table."""

    def __init__(
        self,
        policy_for: Callable[[str], AimdPolicy],
        clock: Clock,
        shared: SharedState,
        load: LoadProbe | None = None,
    ) -> None:
        super().__init__(policy_for, _Wall(clock), load)
        self.shared = shared

    def _op(self, host: str, fn: Callable[[AimdPolicy, TokenBucket], T]) -> T:
        policy = self.policy_for(host)
        with self.shared.transaction(f"rate limit of {host}") as conn:
            row = conn.execute(
                "SELECT rate, tokens, stamp FROM host_rates WHERE host = ?", (host,)
            ).fetchone()
            bucket = TokenBucket(policy.ceiling_per_s, policy.burst, self.clock.monotonic())
            if row is not None:
                rate, tokens, stamp = row
                bucket.rate = min(float(rate), policy.ceiling_per_s)  # a lowered ceiling holds
                bucket.tokens = min(float(tokens), float(policy.burst))
                bucket.stamp = float(stamp)
            out = fn(policy, bucket)
            conn.execute(
                "INSERT INTO host_rates (host, rate, tokens, stamp) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (host) DO UPDATE SET rate = excluded.rate,"
                " tokens = excluded.tokens, stamp = excluded.stamp",
                (host, bucket.rate, bucket.tokens, bucket.stamp),
            )
        return out

    def try_acquire(self, host: str) -> bool:
        return self._op(host, lambda _, bucket: bucket.try_take(self.clock.monotonic()))

    def wait_s(self, host: str) -> float:
        return self._op(host, lambda _, bucket: bucket.wait_s(self.clock.monotonic()))

    def rate(self, host: str) -> float:
        return self._op(host, lambda _, bucket: bucket.rate)

    def record(self, host: str, ok: bool, latency_s: float) -> float:
        load = self.load() if self.load is not None else None
        return self._op(
            host, lambda policy, b: adapt(policy, b, self.clock.monotonic(), ok, latency_s, load)
        )
