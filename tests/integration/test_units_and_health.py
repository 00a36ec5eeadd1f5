"""Unit state (systemctl show, parsed purely; and a real systemd user manager) and
HTTP health checks with timeouts — a hung or unreachable component is unhealthy,
never a crash or a stall of the agent."""

from __future__ import annotations

import time

import pytest

from atlas.errors import ProbeFailure
from atlas.monitoring.collect import Collector
from atlas.monitoring.collect_system import SystemCollector
from atlas.monitoring.component import Component
from atlas.monitoring.health import check_http, verdict
from atlas.monitoring.http import HttpxHttp
from atlas.monitoring.units import SystemctlUnits
from seams.clock import SystemClock
from seams.systemd import UnitState, parse_show
from tests.support.monitoring import HangingServer, TestServer

# Recorded from `systemctl --user show --no-pager -p Id,LoadState,ActiveState,SubState,
# Result,MainPID -- probe.service failing.service nope.service` (systemd 252).
RECORDED = """\
MainPID=4242
Result=success
Id=probe.service
LoadState=loaded
ActiveState=active
SubState=running

MainPID=0
Result=exit-code
Id=failing.service
LoadState=loaded
ActiveState=failed
SubState=failed

MainPID=0
Result=success
Id=nope.service
LoadState=not-found
ActiveState=inactive
SubState=dead
"""


def test_parse_show_reads_one_block_per_unit_in_order() -> None:
    got = parse_show(RECORDED, ["probe.service", "failing.service", "nope.service"])
    assert got["probe.service"] == UnitState(
        name="probe.service",
        load_state="loaded",
        active_state="active",
        sub_state="running",
        result="success",
        main_pid=4242,
    )
    assert got["probe.service"].active
    assert not got["failing.service"].active and not got["failing.service"].succeeded
    assert got["nope.service"].load_state == "not-found" and not got["nope.service"].active


def test_parse_show_reports_units_without_a_block_as_not_found() -> None:
    got = parse_show("", ["x.service"])
    assert got["x.service"].load_state == "not-found" and not got["x.service"].active


def comp(**kw: object) -> Component:
    base: dict[str, object] = {
        "name": "core",
        "component": "core",
        "units": ("atlas-core.service",),
        "job": None,
        "health_url": None,
        "metrics_url": None,
        "timeout_s": 0.5,
    }
    base.update(kw)
    return Component(**base)  # type: ignore[arg-type]


def test_verdict_explains_why_a_component_is_down() -> None:
    up = UnitState(
        name="a.service", load_state="loaded", active_state="active", sub_state="running"
    )
    down = UnitState(
        name="b.service",
        load_state="loaded",
        active_state="failed",
        sub_state="failed",
        result="exit-code",
    )
    assert verdict((up,), None, None) == []
    reasons = verdict((up, down), down, None, None)
    assert reasons == [
        "b.service is failed (loaded/failed)",
        "b.service last run: exit-code (failed)",
    ]
    assert verdict((up,), None, None, "systemctl show failed") == [
        "unit state unknown: systemctl show failed"
    ]


def test_a_hanging_health_endpoint_is_unhealthy_within_its_timeout(hanging: HangingServer) -> None:
    http = HttpxHttp()
    start = time.monotonic()
    result = check_http(comp(health_url=hanging.url + "/healthz"), http, SystemClock())
    took = time.monotonic() - start
    assert result is not None and not result.ok
    assert result.error is not None and "no answer within 0.5s" in result.error
    assert 0.4 < took < 3


def test_an_unreachable_and_a_failing_endpoint(server: TestServer) -> None:
    http = HttpxHttp()
    closed = TestServer()
    url = closed.url
    closed.close()
    result = check_http(comp(health_url=url + "/healthz"), http, SystemClock())
    assert result is not None and not result.ok and "ConnectError" in (result.error or "")
    server.state.health_status = 503
    result = check_http(comp(health_url=server.url + "/healthz"), http, SystemClock())
    assert result is not None and not result.ok and result.status == 503


def test_a_body_that_never_ends_hits_the_total_deadline(server: TestServer) -> None:
    server.state.hang = True  # headers never come either
    http = HttpxHttp()
    with pytest.raises(ProbeFailure, match="no answer within"):
        http.get(server.url + "/metrics", timeout=0.3)


class StaticUnits:
    def __init__(self, states: dict[str, UnitState]) -> None:
        self.map = states

    def states(self, units: list[str]) -> dict[str, UnitState]:
        return {u: self.map.get(u, UnitState(name=u)) for u in units}


def test_collection_with_a_hung_component_still_reports_the_others(
    hanging: HangingServer, server: TestServer
) -> None:
    server.state.metrics = "# TYPE atlas_dlq_size gauge\natlas_dlq_size 3\n"
    active = {
        u: UnitState(name=u, load_state="loaded", active_state="active", sub_state="running")
        for u in ("atlas-a.service", "atlas-b.service")
    }
    collector = Collector(
        [
            comp(
                name="a",
                units=("atlas-a.service",),
                health_url=hanging.url + "/healthz",
                metrics_url=hanging.url + "/metrics",
            ),
            comp(
                name="b",
                units=("atlas-b.service",),
                health_url=server.url + "/healthz",
                metrics_url=server.url + "/metrics",
            ),
        ],
        HttpxHttp(),
        StaticUnits(active),
        SystemClock(),
    )
    start = time.monotonic()
    snap = collector.collect()
    took = time.monotonic() - start
    collector.close()
    assert took < 3, "hung probes run in parallel, bounded by the timeout"
    up = {
        s.label_map["component"]: s.value for s in snap.exported if s.name == "atlas_component_up"
    }
    assert up == {"a": 0.0, "b": 1.0}
    scrape_up = {
        s.label_map["component"]: s.value
        for s in snap.exported
        if s.name == "atlas_component_scrape_up"
    }
    assert scrape_up == {"a": 0.0, "b": 1.0}
    dlq = [s for s in snap.samples if s.name == "atlas_dlq_size"]
    assert [(s.label_map["component"], s.value) for s in dlq] == [("b", 3.0)]
    (a,) = [h for h in snap.components if h.component.name == "a"]
    assert a.reasons and "no answer within 0.5s" in a.reasons[0]


def test_systemctl_that_fails_makes_components_down_not_the_agent() -> None:
    units = SystemctlUnits("user", {"PATH": "/nonexistent"})
    with pytest.raises(ProbeFailure):
        units.states(["atlas-core.service"])
    collector = Collector([comp()], HttpxHttp(), units, SystemClock())
    snap = collector.collect()
    collector.close()
    (h,) = snap.components
    assert not h.up and h.reasons[0].startswith("unit state unknown: cannot run systemctl")


@pytest.mark.systemd
def test_unit_states_from_a_real_systemd_user_manager(systemd_user) -> None:  # type: ignore[no-untyped-def]
    unit_dir = systemd_user.config_home / "systemd" / "user"
    unit_dir.mkdir(parents=True)
    (unit_dir / "atlas-core.service").write_text("[Service]\nExecStart=/bin/sleep 300\n")
    (unit_dir / "atlas-job.service").write_text("[Service]\nType=oneshot\nExecStart=/bin/false\n")
    systemd_user.systemctl("daemon-reload")
    systemd_user.systemctl("start", "atlas-core.service")
    systemd_user.systemctl("start", "atlas-job.service", check=False)
    units = SystemctlUnits("user", systemd_user.env)
    names = ["atlas-core.service", "atlas-job.service", "atlas-api.service"]
    deadline = time.monotonic() + 10
    while not (got := units.states(names))["atlas-core.service"].active:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert got["atlas-core.service"].main_pid > 0
    assert got["atlas-job.service"].result == "exit-code" and not got["atlas-job.service"].succeeded
    assert got["atlas-api.service"].load_state == "not-found"
    c = comp(units=("atlas-core.service", "atlas-api.service"), job="atlas-job.service")
    collector = Collector([c], HttpxHttp(), units, SystemClock(), SystemCollector())
    snap = collector.collect()
    collector.close()
    (h,) = snap.components
    assert not h.up
    assert "atlas-api.service is inactive (not-found/dead)" in h.reasons
    assert "atlas-job.service last run: exit-code (failed)" in h.reasons
    fds = {
        s.label_map["unit"]: s.value for s in snap.exported if s.name == "atlas_process_open_fds"
    }
    assert fds.keys() == {"atlas-core.service", "atlas-monitoring.service"}
    assert fds["atlas-core.service"] >= 3, "the unit's main process, found through systemd"
    systemd_user.systemctl("stop", "atlas-core.service")
