"""The clock seam: wall time for timestamps, monotonic time for intervals."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (wall clock): alert timestamps, history."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps: durations and deadlines."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()
