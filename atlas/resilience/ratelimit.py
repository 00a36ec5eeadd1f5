"""A per-host token bucket whose rate adapts, AIMD style, to how the host and this
machine are doing.

Every host has a ceiling (the most conservative ``rateLimit`` of the sources on it,
or a polite default) and a current rate. A call that succeeds quickly while the
machine is not overloaded raises the rate additively (+``increase_per_s``, up to
the ceiling); an error, a slow answer (latency over ``slow_s``) or a system load
per CPU over ``high_load`` cuts it multiplicatively (×``decrease``, down to the
floor). Nothing blocks here: callers ask ``try_acquire`` and, when refused, how
long until a token (``wait_s``).

The load comes from a ``LoadProbe``: ``system_load`` reads psutil's load average,
and where /proc/loadavg is hidden (the units' ``ProcSubset=pid``) the same figure
from the sysinfo(2) system call. A probe that cannot tell answers None, which
means "unknown", never "overloaded".
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from seams.clock import Clock

LoadProbe = Callable[[], float | None]  # 1-minute load average per CPU, None if unknown


@dataclass(frozen=True)
class AimdPolicy:
    ceiling_per_s: float  # the most this host ever gets
    burst: int  # bucket size
    floor_per_s: float = 1 / 300  # never slower than one call per 5 minutes
    increase_per_s: float | None = None  # additive step; default: a tenth of the ceiling
    decrease: float = 0.5  # multiplicative cut
    slow_s: float = 5.0  # an answer slower than this counts as congestion
    high_load: float = 2.0  # load average per CPU above this counts as congestion

    @property
    def step(self) -> float:
        return self.increase_per_s if self.increase_per_s is not None else self.ceiling_per_s / 10


DEFAULT_POLICY = AimdPolicy(ceiling_per_s=2.0, burst=10)


def sysinfo_load() -> float | None:
    """The 1-minute load average from sysinfo(2), which needs no /proc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct sysinfo is ~112 bytes
        if libc.sysinfo(buf) != 0:
            return None
    except (OSError, AttributeError):
        return None
    loads = ctypes.cast(
        ctypes.addressof(buf) + ctypes.sizeof(ctypes.c_long), ctypes.POINTER(ctypes.c_ulong)
    )
    return float(loads[0]) / 65536.0  # SI_LOAD_SHIFT


def system_load(clock: Clock, every_s: float = 1.0) -> LoadProbe:
    """A probe of the 1-minute load average per CPU, sampled at most every ``every_s``."""
    import psutil

    cpus = os.cpu_count() or 1
    cache: list[float | None] = [None, None]  # [taken at, value]

    def probe() -> float | None:
        now = clock.monotonic()
        if cache[0] is not None and now - cache[0] < every_s:
            return cache[1]
        try:
            value: float | None = psutil.getloadavg()[0] / cpus
        except (OSError, RuntimeError):
            fallback = sysinfo_load()
            value = None if fallback is None else fallback / cpus
        cache[0], cache[1] = now, value
        return value

    return probe


class TokenBucket:
    """``tokens`` as of monotonic time ``stamp``, refilled at ``rate`` up to ``burst``.

    ``try_take`` and ``wait_s`` decide from the same float, ``ready_at``: the time at
    which the bucket holds a whole token. A refusal changes nothing, so a caller that
    waits the advised seconds reaches exactly that time and gets its token. (Deciding
    instead by refilling to ``now`` and comparing with 1.0 disagreed with the advice:
    ``(stamp + wait) - stamp`` is rounded to the clock's precision, and ``tokens``
    came out a hair under one.) Taking refills to ``now`` and subtracts one, which
    may leave ``tokens`` a rounding error below zero: a debt the next wait includes.
    """

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        self.rate = rate_per_s
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def ready_at(self) -> float | None:
        """When the bucket next holds a whole token; None when it holds one now."""
        if self.tokens >= 1.0:
            return None
        return self.stamp + (1.0 - self.tokens) / self.rate

    def try_take(self, now: float) -> bool:
        due = self.ready_at()
        if due is not None and now < due:
            return False
        self._refill(now)
        self.tokens -= 1.0
        return True

    def wait_s(self, now: float) -> float:
        """Seconds until ``try_take`` succeeds: ``now + wait_s(now) >= ready_at()``."""
        due = self.ready_at()
        if due is None or now >= due:
            return 0.0
        wait = due - now
        # Exact, and now + wait == due, whenever now >= due / 2 (Sterbenz); closer to
        # time 0 the difference may round down, so step it up to the next float.
        while now + wait < due:
            wait = math.nextafter(wait, math.inf)
        return wait


class AdaptiveLimiter:
    """Per-host AIMD token buckets. Thread-safe."""

    def __init__(
        self,
        policy_for: Callable[[str], AimdPolicy],
        clock: Clock,
        load: LoadProbe | None = None,
    ) -> None:
        self.policy_for = policy_for
        self.clock = clock
        self.load = load
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[AimdPolicy, TokenBucket]] = {}

    def _get(self, host: str) -> tuple[AimdPolicy, TokenBucket]:
        entry = self._buckets.get(host)
        if entry is None:
            policy = self.policy_for(host)
            bucket = TokenBucket(policy.ceiling_per_s, policy.burst, self.clock.monotonic())
            entry = self._buckets[host] = (policy, bucket)
        return entry

    def try_acquire(self, host: str) -> bool:
        with self._lock:
            return self._get(host)[1].try_take(self.clock.monotonic())

    def wait_s(self, host: str) -> float:
        with self._lock:
            return self._get(host)[1].wait_s(self.clock.monotonic())

    def rate(self, host: str) -> float:
        with self._lock:
            return self._get(host)[1].rate

    def record(self, host: str, ok: bool, latency_s: float) -> float:
        """Adapt the host's rate after a call; returns the new rate (calls per second)."""
        load = self.load() if self.load is not None else None
        with self._lock:
            policy, bucket = self._get(host)
            return adapt(policy, bucket, self.clock.monotonic(), ok, latency_s, load)


def adapt(
    policy: AimdPolicy,
    bucket: TokenBucket,
    now: float,
    ok: bool,
    latency_s: float,
    load: float | None,
) -> float:
    """AIMD: raise the bucket's rate after a quick success on a machine not overloaded,
    cut it otherwise; returns the new rate."""
    bucket._refill(now)
    congested = (
        not ok or latency_s > policy.slow_s or (load is not None and load > policy.high_load)
    )
    if congested:
        bucket.rate = max(policy.floor_per_s, bucket.rate * policy.decrease)
    else:
        bucket.rate = min(policy.ceiling_per_s, bucket.rate + policy.step)
    return bucket.rate
