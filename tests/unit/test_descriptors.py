"""The connection cap below the descriptor limit, and one log line per episode."""

from __future__ import annotations

import logging

import pytest

from seams.descriptors import Exhaustion, connection_cap, open_files_limit


def test_the_cap_leaves_a_reserve_of_descriptors() -> None:
    assert connection_cap(4096) == 3072
    assert connection_cap(1024) == 768
    assert connection_cap(100) == 36  # a reserve of at least 64
    assert connection_cap(20) == 16  # never below a handful
    assert connection_cap() < open_files_limit()


def test_an_episode_is_one_line_when_it_starts_and_one_with_the_count_when_it_clears(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    alarm = Exhaustion(logging.getLogger("t"), "accept() out of descriptors", lambda: now[0])
    with caplog.at_level(logging.WARNING, "t"):
        for _ in range(1000):
            alarm.hit("Too many open files")
            now[0] += 0.001
            alarm.ok()  # one accept went through: still the same episode
        assert len(caplog.records) == 1
        now[0] += 5.0
        alarm.ok()
        alarm.ok()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("accept() out of descriptors: Too many open files")
    assert messages[1].startswith("accept() out of descriptors cleared: 1000 time(s) in 1.0s")
    assert len(messages) == 2 and not alarm.active and alarm.episodes == 1
