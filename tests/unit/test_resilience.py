"""Rate limit, circuit breaker and retry policies, on a fake clock."""

from __future__ import annotations

import pytest

from atlas.errors import CircuitOpen, FetchRejected, FetchUnavailable, TemporaryFailure
from atlas.resilience.breaker import BreakerPolicy, Breakers, CircuitBreaker, State
from atlas.resilience.ratelimit import AdaptiveLimiter, AimdPolicy, TokenBucket
from atlas.resilience.retry import RetryPolicy, backoff_delay, call_with_retries, next_delay
from seams.testing import FakeClock

# ---------------------------------------------------------------- breaker


def test_breaker_opens_after_threshold_then_half_opens_and_closes() -> None:
    clock = FakeClock()
    b = CircuitBreaker(BreakerPolicy(failure_threshold=3, open_s=10), clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state is State.CLOSED
    b.failure()
    assert b.state is State.OPEN
    assert not b.allow()
    assert b.retry_after() == pytest.approx(10)
    clock.advance(9.9)
    assert not b.allow()
    clock.advance(0.2)
    assert b.state is State.HALF_OPEN
    assert b.allow(), "one trial call goes through"
    assert not b.allow(), "only one trial at a time"
    b.success()
    assert b.state is State.CLOSED
    assert b.allow()


def test_failed_trial_reopens_for_twice_as_long() -> None:
    clock = FakeClock()
    b = CircuitBreaker(BreakerPolicy(failure_threshold=1, open_s=10, max_open_s=15), clock)
    b.failure()
    clock.advance(10)
    assert b.allow()
    b.failure()
    assert b.state is State.OPEN
    assert b.retry_after() == pytest.approx(15), "doubled, capped at max_open_s"
    clock.advance(15)
    assert b.state is State.HALF_OPEN


def test_success_resets_the_failure_count() -> None:
    b = CircuitBreaker(BreakerPolicy(failure_threshold=2), FakeClock())
    b.failure()
    b.success()
    b.failure()
    assert b.state is State.CLOSED


def test_released_trial_frees_the_slot() -> None:
    clock = FakeClock()
    b = CircuitBreaker(BreakerPolicy(failure_threshold=1, open_s=1), clock)
    b.failure()
    clock.advance(1)
    assert b.allow()
    b.release()
    assert b.allow()


def test_breakers_report_every_transition_per_host() -> None:
    clock = FakeClock()
    changes: list[tuple[str, State]] = []
    breakers = Breakers(
        BreakerPolicy(failure_threshold=2, open_s=5), clock, lambda h, s: changes.append((h, s))
    )
    breakers.failure("a")
    breakers.failure("a")
    breakers.failure("b")
    assert breakers.state("a") is State.OPEN and breakers.state("b") is State.CLOSED
    clock.advance(5)
    assert breakers.allow("a")
    breakers.success("a")
    assert changes == [("a", State.OPEN), ("a", State.HALF_OPEN), ("a", State.CLOSED)]
    assert State.OPEN.gauge == 2 and State.HALF_OPEN.gauge == 1 and State.CLOSED.gauge == 0


# ---------------------------------------------------------------- rate limit


def test_token_bucket_bursts_then_refills_at_rate() -> None:
    b = TokenBucket(rate_per_s=2.0, burst=3, now=0.0)
    assert [b.try_take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.wait_s(0.0) == pytest.approx(0.5)
    assert b.try_take(0.5)
    assert not b.try_take(0.5)


def _limiter(clock: FakeClock, load: float | None = None) -> AdaptiveLimiter:
    policy = AimdPolicy(ceiling_per_s=10.0, burst=1, floor_per_s=0.5, slow_s=1.0, high_load=2.0)
    return AdaptiveLimiter(lambda host: policy, clock, (lambda: load))


def test_aimd_cuts_on_errors_and_grows_back_additively() -> None:
    clock = FakeClock()
    limiter = _limiter(clock)
    assert limiter.rate("h") == 10.0
    assert limiter.record("h", ok=False, latency_s=0.1) == pytest.approx(5.0)
    assert limiter.record("h", ok=False, latency_s=0.1) == pytest.approx(2.5)
    assert limiter.record("h", ok=True, latency_s=0.1) == pytest.approx(3.5)
    for _ in range(20):
        limiter.record("h", ok=True, latency_s=0.1)
    assert limiter.rate("h") == pytest.approx(10.0), "never above the ceiling"
    for _ in range(20):
        limiter.record("h", ok=False, latency_s=0.1)
    assert limiter.rate("h") == pytest.approx(0.5), "never below the floor"


def test_aimd_treats_slow_answers_and_high_load_as_congestion() -> None:
    clock = FakeClock()
    limiter = _limiter(clock)
    assert limiter.record("h", ok=True, latency_s=3.0) == pytest.approx(5.0)
    loaded = _limiter(clock, load=3.5)
    assert loaded.record("h", ok=True, latency_s=0.1) == pytest.approx(5.0)
    unknown = _limiter(clock, load=None)
    unknown.record("h", ok=False, latency_s=0.1)
    assert unknown.record("h", ok=True, latency_s=0.1) == pytest.approx(6.0)


def test_lower_rate_delays_tokens() -> None:
    clock = FakeClock(monotonic=1000.0)  # where float rounding once left 0.8 s short
    limiter = _limiter(clock)
    assert limiter.try_acquire("h")
    assert not limiter.try_acquire("h")
    for _ in range(3):
        limiter.record("h", ok=False, latency_s=0.1)  # 10 → 1.25 per second
    assert limiter.wait_s("h") == pytest.approx(0.8)
    clock.advance(0.8)
    assert limiter.try_acquire("h")
    assert limiter.try_acquire("other"), "hosts have separate buckets"


def test_system_load_probe_reads_the_kernels_figure() -> None:
    import os

    from atlas.resilience.ratelimit import sysinfo_load, system_load

    direct = sysinfo_load()
    assert direct is not None and direct == pytest.approx(os.getloadavg()[0], abs=0.5)
    probe = system_load(FakeClock())
    first = probe()
    assert first is not None and first >= 0.0
    assert probe() == first, "sampled at most once per second"


# ---------------------------------------------------------------- retry


def test_full_jitter_stays_within_the_capped_exponential() -> None:
    policy = RetryPolicy(attempts=10, base_s=0.5, cap_s=4.0)
    assert backoff_delay(0, policy, lambda: 0.999) == pytest.approx(0.4995)
    assert backoff_delay(2, policy, lambda: 0.999) == pytest.approx(1.998)
    assert backoff_delay(6, policy, lambda: 0.999) == pytest.approx(3.996), "capped"
    assert backoff_delay(6, policy, lambda: 0.0) == 0.0, "full jitter reaches zero"


def test_retry_after_is_a_floor_and_long_ones_give_up() -> None:
    policy = RetryPolicy(attempts=3, base_s=0.5, cap_s=4.0, max_wait_s=30)
    assert next_delay(0, FetchUnavailable("x", 429, 7.0), policy, lambda: 0.5) == 7.0
    assert next_delay(0, FetchUnavailable("x", 429, 120.0), policy, lambda: 0.5) is None
    assert next_delay(0, CircuitOpen("h", 3.0), policy, lambda: 0.5) is None
    assert next_delay(2, FetchUnavailable("x"), policy, lambda: 0.5) is None, "attempts used up"


def test_call_with_retries_retries_temporary_failures_only() -> None:
    calls: list[int] = []
    sleeps: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise FetchUnavailable("down")
        return "ok"

    policy = RetryPolicy(attempts=3, base_s=1.0, cap_s=10.0)
    result = call_with_retries(flaky, policy, lambda s: sleeps.append(s) or True, lambda: 0.5)
    assert result == "ok" and len(calls) == 3
    assert sleeps == [0.5, 1.0]

    def broken() -> str:
        calls.append(1)
        raise FetchRejected("404", 404)

    calls.clear()
    with pytest.raises(FetchRejected):
        call_with_retries(broken, policy, lambda s: True, lambda: 0.5)
    assert len(calls) == 1, "a permanent failure is not retried"


def test_call_with_retries_gives_up_after_attempts_and_when_sleep_is_cut() -> None:
    calls: list[int] = []

    def down() -> str:
        calls.append(1)
        raise TemporaryFailure("down")

    with pytest.raises(TemporaryFailure):
        call_with_retries(down, RetryPolicy(attempts=4), lambda s: True, lambda: 0.0)
    assert len(calls) == 4
    calls.clear()
    with pytest.raises(TemporaryFailure):
        call_with_retries(down, RetryPolicy(attempts=4), lambda s: False, lambda: 0.0)
    assert len(calls) == 1, "shutdown cuts the wait and the retries"
