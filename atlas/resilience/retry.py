"""Retries of temporary failures: capped exponential backoff with full jitter.

Only ``TemporaryFailure`` is retried; a ``PermanentFailure`` (or any other error)
goes straight up. A server's ``Retry-After`` is a floor for the next wait; when it
asks for longer than the policy is willing to wait in-process, the failure goes up
at once and the scheduler honours the delay instead. ``CircuitOpen`` is never
waited out here either: the breaker already decided when the next trial is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from atlas.errors import CircuitOpen, FetchUnavailable, TemporaryFailure

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # calls in total, the first included
    base_s: float = 0.5
    cap_s: float = 10.0  # the longest backoff between two calls
    max_wait_s: float = 30.0  # the longest Retry-After waited out in-process


def backoff_delay(retry: int, policy: RetryPolicy, rand: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, min(cap, base · 2^retry)); ``retry`` counts from 0."""
    ceiling = min(policy.cap_s, policy.base_s * (2.0**retry))
    return rand() * ceiling


def next_delay(
    retry: int, exc: TemporaryFailure, policy: RetryPolicy, rand: Callable[[], float]
) -> float | None:
    """Seconds to wait before retrying after ``exc``, or None to give up now."""
    if isinstance(exc, CircuitOpen) or retry + 1 >= policy.attempts:
        return None
    delay = backoff_delay(retry, policy, rand)
    retry_after = exc.retry_after if isinstance(exc, FetchUnavailable) else None
    if retry_after is not None:
        if retry_after > policy.max_wait_s:
            return None
        delay = max(delay, retry_after)
    return delay


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], bool],
    rand: Callable[[], float],
    on_retry: Callable[[int, TemporaryFailure, float], None] | None = None,
) -> T:
    """Call ``fn`` until it succeeds, fails permanently, or the policy gives up.

    ``sleep(seconds)`` returns False when the wait was cut short (shutting down):
    the last failure then goes up without another call.
    """
    retry = 0
    while True:
        try:
            return fn()
        except TemporaryFailure as exc:
            delay = next_delay(retry, exc, policy, rand)
            if delay is None:
                raise
            if on_retry is not None:
                on_retry(retry + 1, exc, delay)
            if not sleep(delay):
                raise
            retry += 1
