"""Health of a component: its systemd units and its HTTP health endpoint.

A component is up when every unit is active, its oneshot job (if any) last
succeeded, and its health URL (if any) answered 2xx within the timeout. Anything
else — a hung endpoint, a refused connection, systemctl failing — makes it down
with a reason; it never raises. ``verdict`` is the pure part.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from atlas.errors import ProbeFailure
from atlas.monitoring.component import Component
from atlas.monitoring.http import Http
from seams.clock import Clock
from seams.systemd import UnitState

MAX_HEALTH_BYTES = 256 * 1024


@dataclass(frozen=True)
class HttpCheck:
    ok: bool
    status: int | None
    duration_s: float
    error: str | None = None


@dataclass(frozen=True)
class ComponentHealth:
    component: Component
    units: tuple[UnitState, ...]
    job: UnitState | None
    http: HttpCheck | None  # None: the component has no health URL
    units_error: str | None = None

    @property
    def up(self) -> bool:
        return not self.reasons

    @property
    def reasons(self) -> list[str]:
        return verdict(self.units, self.job, self.http, self.units_error)


def verdict(
    units: tuple[UnitState, ...],
    job: UnitState | None,
    http: HttpCheck | None,
    units_error: str | None = None,
) -> list[str]:
    """Why a component is down; empty when it is up."""
    reasons = []
    if units_error:
        reasons.append(f"unit state unknown: {units_error}")
    for u in units:
        if not u.active:
            reasons.append(f"{u.name} is {u.active_state} ({u.load_state}/{u.sub_state})")
    if job is not None and not job.succeeded:
        reasons.append(f"{job.name} last run: {job.result} ({job.active_state})")
    if http is not None and not http.ok:
        reasons.append(f"health check: {http.error or f'HTTP {http.status}'}")
    return reasons


def check_http(c: Component, http: Http, clock: Clock) -> HttpCheck | None:
    """GET the component's health URL with its timeout (None when it has none)."""
    if not c.health_url:
        return None
    start = clock.monotonic()
    try:
        r = http.get(c.health_url, timeout=c.timeout_s, max_bytes=MAX_HEALTH_BYTES)
    except ProbeFailure as exc:
        return HttpCheck(False, None, clock.monotonic() - start, str(exc))
    took = clock.monotonic() - start
    return HttpCheck(r.ok, r.status, took, None if r.ok else f"HTTP {r.status}")


def health_of(
    c: Component,
    states: Mapping[str, UnitState],
    units_error: str | None,
    http: HttpCheck | None,
) -> ComponentHealth:
    units = tuple(states.get(u, UnitState(u)) for u in c.units)
    job = states.get(c.job, UnitState(c.job)) if c.job else None
    return ComponentHealth(c, units, job, http, units_error)
