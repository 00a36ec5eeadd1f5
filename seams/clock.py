"""The clock seam: wall time for what is stored and shown, monotonic time for intervals.

The two are named apart on purpose: ``wall()`` may jump (NTP, an operator), so it
is only for timestamps; deadlines, durations and timeouts use ``monotonic()``.
Code that waits takes the clock's ``sleep`` too, so a test clock can make time pass
without waiting (``seams.testing.FakeClock``).
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def wall(self) -> float:
        """Seconds since the epoch: timestamps that are stored or shown."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back: intervals and deadlines."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a test clock advances instead)."""
        ...


class SystemClock:
    """The real clock."""

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)
