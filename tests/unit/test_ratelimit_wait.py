"""A caller that waits exactly what ``wait_s`` advised gets its token.

``wait_s`` and ``try_acquire`` must agree to the last bit: at large monotonic
times the elapsed time ``(start + wait) - start`` is not exactly ``wait``, and a
limiter that refilled by that rounded product used to fall just short of one token
and refuse the caller again.
"""

from __future__ import annotations

import pytest

from atlas.resilience.ratelimit import AdaptiveLimiter, AimdPolicy
from seams.testing import FakeClock

STARTS = [0.0, 1000.0, 1e6, 123456.789]
# (ceiling per second, failures recorded to cut it): 10 → 1.25/s is the case that
# used to be refused at 1000.0.
RATES = [(10.0, 3), (10.0, 0), (3.0, 0), (7.0, 1), (0.7, 0), (2.0, 2), (600.0, 5)]


def _limiter(clock: FakeClock, ceiling: float) -> AdaptiveLimiter:
    policy = AimdPolicy(ceiling_per_s=ceiling, burst=1, floor_per_s=0.01)
    return AdaptiveLimiter(lambda host: policy, clock, lambda: None)


def _drained(start: float, ceiling: float, cuts: int) -> tuple[FakeClock, AdaptiveLimiter]:
    clock = FakeClock(monotonic=start)
    limiter = _limiter(clock, ceiling)
    assert limiter.try_acquire("h")
    for _ in range(cuts):
        limiter.record("h", ok=False, latency_s=0.1)
    assert not limiter.try_acquire("h")
    return clock, limiter


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize(("ceiling", "cuts"), RATES)
def test_waiting_the_advised_time_gets_a_token(start: float, ceiling: float, cuts: int) -> None:
    clock, limiter = _drained(start, ceiling, cuts)
    wait = limiter.wait_s("h")
    assert wait == pytest.approx(1.0 / limiter.rate("h"))
    clock.advance(wait)
    assert limiter.wait_s("h") == 0.0
    assert limiter.try_acquire("h"), f"refused after waiting the advised {wait!r}s"
    assert not limiter.try_acquire("h"), "one wait buys one token"


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize(("ceiling", "cuts"), RATES)
def test_a_partly_refilled_bucket_advises_the_rest(start: float, ceiling: float, cuts: int) -> None:
    clock, limiter = _drained(start, ceiling, cuts)
    clock.advance(0.3 / limiter.rate("h"))  # a third of a token's time has passed
    assert not limiter.try_acquire("h")
    wait = limiter.wait_s("h")
    assert wait == pytest.approx(0.7 / limiter.rate("h"))
    clock.advance(wait)
    assert limiter.try_acquire("h"), f"refused after waiting the advised {wait!r}s"


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize(("ceiling", "cuts"), RATES)
def test_no_token_before_the_advised_time(start: float, ceiling: float, cuts: int) -> None:
    clock, limiter = _drained(start, ceiling, cuts)
    wait = limiter.wait_s("h")
    clock.advance(wait * 0.99)
    assert not limiter.try_acquire("h")
    assert 0.0 < limiter.wait_s("h") <= wait * 0.011


def test_each_wait_in_a_row_is_enough() -> None:
    """A caller that keeps taking tokens as soon as it is told it may."""
    clock, limiter = _drained(1000.0, 10.0, 3)
    for _ in range(200):
        clock.advance(limiter.wait_s("h"))
        assert limiter.try_acquire("h")
    assert clock.monotonic() == pytest.approx(1000.0 + 200 * 0.8)


@pytest.mark.parametrize(
    ("start", "rate", "fraction"),
    [(0.1, 1.25, 0.1), (0.1, 0.7, 0.3), (0.3, 0.3, 0.3), (0.5, 0.7, 0.1)],
)
def test_close_to_time_zero_the_advice_is_rounded_up(
    start: float, rate: float, fraction: float
) -> None:
    """Where the clock reads less than the wait, ``due - now`` itself may round down;
    these are cases where it does."""
    clock, limiter = _drained(start, rate, 0)
    clock.advance(fraction / rate)
    wait = limiter.wait_s("h")
    assert wait == pytest.approx((1.0 - fraction) / rate)
    clock.advance(wait)
    assert limiter.try_acquire("h"), f"refused after waiting the advised {wait!r}s"
