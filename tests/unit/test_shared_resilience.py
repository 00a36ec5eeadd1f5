"""Breakers and rate limits shared through the content database: two instances
(two connections to one SQLite file) see one circuit and one bucket per host."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from atlas.core.store import open_store
from atlas.resilience.breaker import BreakerPolicy, State
from atlas.resilience.ratelimit import AimdPolicy
from atlas.resilience.shared import SharedBreakers, SharedLimiter, SharedState
from seams.testing import FakeClock

HOST = "feeds.example:8080"


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[SharedState, SharedState]]:
    db = tmp_path / "atlas.db"
    open_store(db, 5).close()  # migrated
    a, b = SharedState(db, 5), SharedState(db, 5)
    yield a, b
    a.close()
    b.close()


POLICY = BreakerPolicy(failure_threshold=4, open_s=10, max_open_s=40)


def test_failures_seen_by_two_instances_open_one_circuit(
    pair: tuple[SharedState, SharedState],
) -> None:
    clock = FakeClock()
    heard: list[tuple[str, State]] = []
    a = SharedBreakers(POLICY, clock, pair[0], lambda h, s: heard.append((h, s)))
    b = SharedBreakers(POLICY, clock, pair[1])
    a.declare([HOST])
    for breakers in (a, b, a):
        breakers.failure(HOST)
    assert b.state(HOST) is State.CLOSED, "three of four failures"
    b.failure(HOST)
    assert a.state(HOST) is State.OPEN and not a.allow(HOST)
    assert heard == [(HOST, State.OPEN)]
    assert a.retry_after(HOST) == pytest.approx(10)
    b.declare([HOST])  # a starting instance does not close it
    assert a.state(HOST) is State.OPEN
    clock.advance(10)
    assert a.allow(HOST), "the one trial of the fleet"
    assert not b.allow(HOST), "the other instance waits for the trial"
    a.failure(HOST)
    assert b.state(HOST) is State.OPEN and b.retry_after(HOST) == pytest.approx(20)
    clock.advance(20)
    assert b.allow(HOST)
    b.success(HOST)
    assert a.state(HOST) is State.CLOSED and a.allow(HOST)


def test_a_trial_taken_by_an_instance_that_died_is_given_back(
    pair: tuple[SharedState, SharedState],
) -> None:
    clock = FakeClock()
    policy = BreakerPolicy(failure_threshold=1, open_s=5)
    a = SharedBreakers(policy, clock, pair[0], trial_timeout_s=30)
    b = SharedBreakers(policy, clock, pair[1], trial_timeout_s=30)
    a.failure(HOST)
    clock.advance(5)
    assert a.allow(HOST)  # ... and a is SIGKILLed during its trial
    clock.advance(29)
    assert not b.allow(HOST)
    clock.advance(2)
    assert b.allow(HOST)


def test_the_rate_limit_of_a_host_is_shared_not_multiplied(
    pair: tuple[SharedState, SharedState],
) -> None:
    clock = FakeClock()
    policy = AimdPolicy(ceiling_per_s=1.0, burst=3)
    a = SharedLimiter(lambda host: policy, clock, pair[0])
    b = SharedLimiter(lambda host: policy, clock, pair[1])
    took = [lim.try_acquire(HOST) for lim in (a, b, a, b)]
    assert took == [True, True, True, False], "one burst of 3 for both"
    assert b.wait_s(HOST) == pytest.approx(1.0)
    clock.advance(1.0)
    assert a.try_acquire(HOST) and not b.try_acquire(HOST)
    a.record(HOST, ok=False, latency_s=0.1)
    assert b.rate(HOST) == pytest.approx(0.5), "a's congestion slows b too"
    b.record(HOST, ok=True, latency_s=0.1)
    assert a.rate(HOST) == pytest.approx(0.6)
