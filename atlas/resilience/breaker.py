"""Per-host circuit breakers: closed → open after N consecutive failures →
half-open (a limited number of trial calls once the open period is over) →
closed after a successful trial, or open again (for twice as long, capped) after
a failed one.

Exported as ``atlas_circuit_state{host}``: 0 closed, 1 half-open, 2 open (higher
is worse). Thread-safe; time comes from a ``Clock``.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass

from seams.clock import Clock


class State(enum.Enum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"

    @property
    def gauge(self) -> int:
        return {"closed": 0, "half_open": 1, "open": 2}[self.value]


@dataclass(frozen=True)
class BreakerPolicy:
    failure_threshold: int = 5  # consecutive failures that open the circuit
    open_s: float = 60.0  # first open period
    max_open_s: float = 3600.0  # open periods double up to this
    half_open_calls: int = 1  # trial calls let through at once when half-open


class CircuitBreaker:
    def __init__(self, policy: BreakerPolicy, clock: Clock) -> None:
        self.policy = policy
        self.clock = clock
        self._state = State.CLOSED
        self.failures = 0
        self.opened_at = 0.0  # monotonic
        self.open_for = policy.open_s
        self.trials = 0  # trial calls in flight while half-open

    @property
    def state(self) -> State:
        """The state now: an open circuit whose period is over reads as half-open."""
        if self._state is State.OPEN and self.clock.monotonic() >= self.opened_at + self.open_for:
            self._state = State.HALF_OPEN
            self.trials = 0
        return self._state

    def retry_after(self) -> float:
        if self.state is not State.OPEN:
            return 0.0
        return max(0.0, self.opened_at + self.open_for - self.clock.monotonic())

    def allow(self) -> bool:
        """May a call go out now? A half-open circuit counts the trial it lets through."""
        state = self.state
        if state is State.CLOSED:
            return True
        if state is State.HALF_OPEN and self.trials < self.policy.half_open_calls:
            self.trials += 1
            return True
        return False

    def success(self) -> None:
        self._state = State.CLOSED
        self.failures = 0
        self.trials = 0
        self.open_for = self.policy.open_s

    def failure(self) -> None:
        state = self.state
        self.failures += 1
        if state is State.HALF_OPEN:
            self.open_for = min(self.policy.max_open_s, self.open_for * 2)
            self._open()
        elif state is State.CLOSED and self.failures >= self.policy.failure_threshold:
            self._open()

    def release(self) -> None:
        """A let-through call ended without a verdict (cancelled): free its trial slot."""
        if self._state is State.HALF_OPEN and self.trials > 0:
            self.trials -= 1

    def _open(self) -> None:
        self._state = State.OPEN
        self.opened_at = self.clock.monotonic()
        self.trials = 0


Listener = Callable[[str, State], None]


class Breakers:
    """One breaker per host; ``on_change(host, state)`` hears every state change."""

    def __init__(
        self, policy: BreakerPolicy, clock: Clock, on_change: Listener | None = None
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.on_change = on_change
        self._lock = threading.Lock()
        self._by_host: dict[str, CircuitBreaker] = {}
        self._last: dict[str, State] = {}

    def _get(self, host: str) -> CircuitBreaker:
        breaker = self._by_host.get(host)
        if breaker is None:
            breaker = self._by_host[host] = CircuitBreaker(self.policy, self.clock)
            self._last[host] = State.CLOSED
        return breaker

    def _changed(self, host: str, breaker: CircuitBreaker) -> None:
        state = breaker.state
        if self._last.get(host) is not state:
            self._last[host] = state
            if self.on_change is not None:
                self.on_change(host, state)

    def allow(self, host: str) -> bool:
        with self._lock:
            breaker = self._get(host)
            allowed = breaker.allow()
            self._changed(host, breaker)
            return allowed

    def retry_after(self, host: str) -> float:
        with self._lock:
            return self._get(host).retry_after()

    def success(self, host: str) -> None:
        with self._lock:
            breaker = self._get(host)
            breaker.success()
            self._changed(host, breaker)

    def failure(self, host: str) -> None:
        with self._lock:
            breaker = self._get(host)
            breaker.failure()
            self._changed(host, breaker)

    def release(self, host: str) -> None:
        with self._lock:
            self._get(host).release()

    def state(self, host: str) -> State:
        with self._lock:
            breaker = self._get(host)
            self._changed(host, breaker)
            return breaker.state

    def states(self) -> dict[str, State]:
        with self._lock:
            out = {}
            for host, breaker in self._by_host.items():
                self._changed(host, breaker)
                out[host] = breaker.state
            return out
