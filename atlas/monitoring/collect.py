"""One collection: system metrics, unit states, health checks and scrapes.

Health checks and scrapes of all components run at once on a small thread pool,
each bounded by its component's timeout, while this thread asks systemd and
psutil; a collection therefore takes about as long as the slowest component's
timeout at worst. The result is a ``Snapshot``: the raw findings plus the
``SampleSet`` rules are evaluated against (system series, component health
series, derived series and the components' own series).
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from atlas.errors import ProbeFailure
from atlas.monitoring.collect_system import SystemCollector
from atlas.monitoring.component import Component
from atlas.monitoring.derive import derive
from atlas.monitoring.health import ComponentHealth, HttpCheck, check_http, health_of
from atlas.monitoring.http import Http
from atlas.monitoring.samples import Sample, SampleSet, sample
from atlas.monitoring.scrape import FamilyCache, Scrape, exposed, scrape
from atlas.monitoring.units import UnitStates
from seams.clock import Clock
from seams.systemd import UnitState

T = TypeVar("T")


@dataclass(frozen=True)
class Snapshot:
    at: float  # wall clock
    duration_s: float
    components: tuple[ComponentHealth, ...]
    scrapes: dict[str, Scrape]
    samples: SampleSet
    exported: tuple[Sample, ...] = field(default_factory=tuple)  # what /metrics shows


def health_samples(h: ComponentHealth, s: Scrape | None) -> list[Sample]:
    name = h.component.name
    out = [sample("atlas_component_up", 1 if h.up else 0, component=name)]
    for u in h.units:
        out.append(
            sample("atlas_component_unit_active", int(u.active), component=name, unit=u.name)
        )
    if h.job is not None:
        out.append(
            sample(
                "atlas_component_job_succeeded",
                int(h.job.succeeded),
                component=name,
                unit=h.job.name,
            )
        )
    if h.http is not None:
        out.append(sample("atlas_component_health_up", int(h.http.ok), component=name))
        out.append(
            sample("atlas_component_health_duration_seconds", h.http.duration_s, component=name)
        )
    if s is not None:
        out.append(sample("atlas_component_scrape_up", int(s.ok), component=name))
        out.append(sample("atlas_component_scrape_duration_seconds", s.duration_s, component=name))
        out.append(sample("atlas_component_scrape_samples", s.sample_count, component=name))
    return out


class Collector:
    def __init__(
        self,
        components: Sequence[Component],
        http: Http,
        units: UnitStates,
        clock: Clock,
        system: SystemCollector | None = None,
        max_workers: int = 4,
    ) -> None:
        self.components = tuple(components)
        self.http = http
        self.units = units
        self.clock = clock
        self.system = system
        self.pool = cf.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="probe")
        self.previous: dict[str, Scrape] = {}
        self.parsed = {c.name: FamilyCache() for c in self.components}

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _unit_states(self) -> tuple[dict[str, UnitState], str | None]:
        names: list[str] = []
        for c in self.components:
            names += [*c.units, *([c.job] if c.job else [])]
        try:
            return self.units.states(list(dict.fromkeys(names))), None
        except ProbeFailure as exc:
            return {}, str(exc)

    def collect(self) -> Snapshot:
        start = self.clock.monotonic()
        at = self.clock.wall()
        checks = {
            c.name: self.pool.submit(check_http, c, self.http, self.clock) for c in self.components
        }
        scrapes_f = {
            c.name: self.pool.submit(scrape, c, self.http, self.clock, self.parsed[c.name])
            for c in self.components
        }
        states, units_error = self._unit_states()
        pids = {
            (c.component, u): states[u].main_pid
            for c in self.components
            for u in c.units
            if u in states and states[u].main_pid > 0
        }
        system = self.system.collect(pids) if self.system is not None else []
        healths, scrapes, samples = [], {}, SampleSet(system)
        exported: list[Sample] = list(system)
        for c in self.components:
            http = self._result(
                checks[c.name], c, lambda c, why: HttpCheck(False, None, c.timeout_s, why)
            )
            s = self._result(
                scrapes_f[c.name], c, lambda c, why: Scrape(c.name, False, start, c.timeout_s, why)
            )
            h = health_of(c, states, units_error, http)
            healths.append(h)
            own = health_samples(h, s)
            if s is not None:
                scrapes[c.name] = s
                own += derive(s, self.previous.get(c.name))
                samples.add(exposed(s))
                if s.ok:
                    self.previous[c.name] = s
            samples.add(own)
            exported += own
        return Snapshot(
            at, self.clock.monotonic() - start, tuple(healths), scrapes, samples, tuple(exported)
        )

    @staticmethod
    def _result(future: cf.Future[T], c: Component, failed: Callable[[Component, str], T]) -> T:
        try:
            return future.result(timeout=c.timeout_s + 2.0)
        except cf.TimeoutError:
            return failed(c, f"no answer within {c.timeout_s:g}s")
        except Exception as exc:  # noqa: BLE001 - a probe bug makes a component down, not the agent
            return failed(c, f"probe failed: {type(exc).__name__}: {exc}")
