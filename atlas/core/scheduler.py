"""When each source is fetched next. Pure functions of times and counts.

* After a success (or 304): the source's interval, stretched to the response's
  freshness lifetime when the server says the content stays fresh longer (capped
  at ``max_freshness_s``, and never below the interval).
* After a failure: interval · 2^(errors-1), capped at ``cap_s`` (or the interval,
  if that is longer); a Retry-After or an open circuit is a floor.
A failing source is never dropped: its delay stops growing at the cap.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    max_freshness_s: float = 24 * 3600.0
    error_cap_s: float = 6 * 3600.0

    def after_success(self, now: float, interval_s: float, freshness_s: float | None) -> float:
        delay = interval_s
        if freshness_s is not None and freshness_s > interval_s:
            delay = min(freshness_s, max(self.max_freshness_s, interval_s))
        return now + delay

    def error_delay(self, interval_s: float, errors: int) -> float:
        cap = max(self.error_cap_s, interval_s)
        exponent = min(max(0, errors - 1), 30)
        return min(cap, interval_s * (2.0**exponent))

    def after_failure(
        self, now: float, interval_s: float, errors: int, retry_after_s: float | None
    ) -> float:
        delay = self.error_delay(interval_s, errors)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, max(self.error_cap_s, interval_s)))
        return now + delay
