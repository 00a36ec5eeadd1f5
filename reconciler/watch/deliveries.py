"""The webhook's replay window: delivery ids seen lately, in memory, bounded.

GitHub names every delivery (``X-GitHub-Delivery``, a GUID; a redelivery reuses it).
A signed request whose id was seen within ``max_age`` seconds is a replay and
schedules nothing. At most ``max_size`` ids are kept (the oldest go first), so a
flood of signed requests cannot grow memory; time is the monotonic clock, passed in.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_ID_LENGTH = 128  # a GUID is 36 characters


class DeliveryWindow:
    def __init__(
        self,
        max_size: int = 4096,
        max_age: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_size = max_size
        self.max_age = max_age
        self.clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()  # id → when, oldest first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def first(self, delivery: str) -> bool:
        """Remember ``delivery``; False if it was already seen within the window."""
        with self._lock:
            now = self.clock()
            while self._seen:
                oldest, at = next(iter(self._seen.items()))
                if now - at <= self.max_age:
                    break
                del self._seen[oldest]
            if delivery in self._seen:
                return False
            self._seen[delivery] = now
            while len(self._seen) > self.max_size:
                self._seen.popitem(last=False)
            return True
