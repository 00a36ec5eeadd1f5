"""The agent in-process, driven by a test clock against real HTTP servers: its own
/metrics (checked by promtool) and /healthz, maintenance mode, a receiver that is
down and comes back, state kept across a restart and a reload."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from atlas import maintenance
from atlas.agent.agent import Agent, AgentDeps
from atlas.agent.settings import load_settings
from atlas.alerting import outbox
from seams.testing import FakeClock, RunningUnits
from tests.support.monitoring import (
    TestServer,
    component,
    config,
    metrics_text,
    rule,
    source_errors,
    source_failing,
    webhook_channel,
    write_config,
)


@pytest.fixture
def world(
    tmp_path: Path, server: TestServer, server2: TestServer, clock: FakeClock
) -> Iterator[Any]:
    """An agent watching one component (``server``) and notifying a webhook (``server2``)."""

    class W:
        pass

    w = W()
    w.clock, w.component, w.receiver = clock, server, server2
    server.state.metrics = source_errors(a=0)
    w.cfg = config(
        tmp_path / "data",
        rules=[
            source_failing(
                annotations={"summary": "source {{ labels.source }} failed {{ value }} times"}
            )
        ],
        channels=[webhook_channel("hook", server2.url + "/hook")],
        components=[component("core", server.url)],
    )
    w.path = write_config(tmp_path / "monitoring.json", w.cfg)
    w.agents = []

    def start(**kw: Any) -> Agent:
        s = dataclasses.replace(load_settings(w.path), port=0)
        deps = AgentDeps(clock=clock, units=RunningUnits(), **kw)
        agent = Agent(s, deps, w.path, outbox.RetryPolicy(1.0, 2.0))
        agent.open()
        w.agents.append(agent)
        return agent

    w.start = start
    yield w
    for a in w.agents:
        a.close()


def delivered(receiver: TestServer) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.requests if r.status == 200]


def test_a_firing_alert_is_delivered_once(world: Any) -> None:
    agent = world.start()
    agent.cycle()
    world.component.state.metrics = source_errors(a=5, b=1)
    ev = agent.cycle()
    assert ev is not None and [(t.from_state, t.to_state) for t in ev.transitions] == [
        ("inactive", "firing")
    ]
    assert agent.deliverer.deliver_due() == 1
    (body,) = delivered(world.receiver)
    assert body["status"] == "firing"
    (a,) = body["alerts"]
    assert a["labels"] == {
        "alertname": "source-failing",
        "severity": "warning",
        "source": "a",
        "component": "core",
    }
    assert a["annotations"] == {"summary": "source a failed 5 times"}
    for _ in range(5):
        world.clock.advance(10)
        agent.cycle()
        agent.deliverer.deliver_due()
    assert len(delivered(world.receiver)) == 1, "still firing: not sent again before repeatInterval"
    world.component.state.metrics = source_errors(a=0, b=1)
    agent.cycle()
    agent.deliverer.deliver_due()
    assert [b["status"] for b in delivered(world.receiver)] == ["firing", "resolved"]


def test_a_channel_that_is_down_gets_the_notification_when_it_is_back(world: Any) -> None:
    agent = world.start()
    world.receiver.state.status = 503
    world.component.state.metrics = source_errors(a=5)
    agent.cycle()
    for _ in range(4):
        agent.deliverer.deliver_due()
        world.clock.advance(3)
    assert len(world.receiver.requests) >= 3 and not delivered(world.receiver)
    assert agent.exporter.notifications.labels(channel="hook", result="retry")._value.get() >= 3
    world.receiver.state.status = 200
    world.clock.advance(3)
    agent.deliverer.deliver_due()
    assert [b["status"] for b in delivered(world.receiver)] == ["firing"]


def test_maintenance_records_alerts_but_sends_nothing_until_it_ends(world: Any) -> None:
    agent = world.start()
    window = maintenance.turn_on(
        agent.settings.maintenance_file, "upgrading", 600, now=world.clock.wall()
    )
    assert window.until == world.clock.wall() + 600
    world.component.state.metrics = source_errors(a=5)
    agent.cycle()
    world.clock.advance(10)
    agent.cycle()
    agent.deliverer.deliver_due()
    assert not world.receiver.requests
    conn = agent.conn
    assert conn.execute("SELECT to_state FROM alert_history").fetchall() == [("firing",)]
    assert conn.execute("SELECT result, error FROM delivery_attempts").fetchall() == [
        ("suppressed", "maintenance: upgrading")
    ]
    assert conn.execute("SELECT COUNT(*) FROM outbox").fetchone() == (0,)
    assert agent.exporter.view.view.maintenance
    world.clock.advance(600)  # the window ends by itself
    agent.cycle()
    agent.deliverer.deliver_due()
    assert [b["status"] for b in delivered(world.receiver)] == ["firing"]
    assert not agent.exporter.view.view.maintenance


def test_a_restart_neither_resends_nor_forgets(world: Any) -> None:
    first = world.start()
    world.component.state.metrics = source_errors(a=5)
    first.cycle()
    first.deliverer.deliver_due()
    first.close()
    second = world.start()
    assert [a.rule for a in second.state.alerts.values()] == ["source-failing"]
    world.clock.advance(10)
    second.cycle()
    second.deliverer.deliver_due()
    assert len(delivered(world.receiver)) == 1, "already notified before the restart"
    world.component.state.metrics = source_errors(a=0)
    second.cycle()
    second.deliverer.deliver_due()
    assert [b["status"] for b in delivered(world.receiver)] == ["firing", "resolved"]


def test_reload_keeps_alert_state_and_refuses_a_bad_config(world: Any) -> None:
    agent = world.start()
    world.component.state.metrics = source_errors(a=5)
    agent.cycle()
    agent.deliverer.deliver_due()
    cfg = json.loads(world.path.read_text())
    cfg["rules"].append(rule("dlq", "atlas_dlq_size", threshold=100))
    cfg["rules"][0]["annotations"]["summary"] = "changed"
    world.path.write_text(json.dumps(cfg))
    assert agent.reload()
    assert [r.name for r in agent.alerting.rules] == ["source-failing", "dlq"]
    world.clock.advance(10)
    agent.cycle()
    agent.deliverer.deliver_due()
    assert len(delivered(world.receiver)) == 1, "the firing alert survived the reload unsent"
    world.path.write_text(json.dumps({**cfg, "rules": [rule("x", channels=["nope"])]}))
    assert not agent.reload()
    assert [r.name for r in agent.alerting.rules] == ["source-failing", "dlq"], "the old rules stay"
    agent.cycle()
    assert not agent.exporter.view.view.reload_ok
    cfg["rules"] = cfg["rules"][1:]  # source-failing removed: its alert resolves
    world.path.write_text(json.dumps(cfg))
    assert agent.reload()
    agent.cycle()
    agent.deliverer.deliver_due()
    assert [b["status"] for b in delivered(world.receiver)] == ["firing", "resolved"]


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing (scripts/test installs the prometheus package)")
        pytest.skip("promtool is missing: apt-get install prometheus")
    return found


@pytest.mark.prometheus
def test_metrics_and_healthz_over_http_pass_promtool(world: Any) -> None:
    tool = promtool()
    world.component.state.metrics = metrics_text(
        10, 0, {"0.1": 5, "1": 10, "+Inf": 10}, {"new": 3, "error": 0}
    )
    agent = world.start()
    port = agent.listen()
    agent.start_delivery()
    agent.cycle()
    world.clock.advance(10)
    world.component.state.metrics = metrics_text(
        30, 5, {"0.1": 15, "1": 28, "+Inf": 30}, {"new": 9, "error": 1}
    )
    agent.cycle()
    base = f"http://127.0.0.1:{port}"
    r = httpx.get(base + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    check = subprocess.run(
        [tool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert 'atlas_component_scrape_up{component="core"} 1.0' in text
    for needle in (
        "atlas_system_cpu_ratio ",
        'atlas_system_disk_used_ratio{mount="/"}',
        'atlas_system_disk_used_percent{mount="/"}',  # the old name, kept for one release
        'atlas_component_up{component="core"} 1.0',
        'atlas_alert_active{alertname="source-failing",severity="warning",state="firing"} 1.0',
        'atlas_component_http_request_duration_seconds{component="core",quantile="0.5"}',
        'atlas_component_http_error_ratio{component="core"} 0.2',
        'atlas_component_dlq_size{component="core"} 7.0',
        'atlas_notifications_pending{channel="hook"}',
        "atlas_maintenance_active 0.0",
        "process_resident_memory_bytes",
    ):
        assert needle in text, needle
    health = httpx.get(base + "/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    world.clock.advance(3600)  # no cycle for an hour: the agent is stuck
    health = httpx.get(base + "/healthz")
    assert health.status_code == 503 and health.json()["status"] == "unhealthy"
    assert httpx.get(base + "/nope").status_code == 404


def test_a_secret_never_reaches_the_database_metrics_or_logs(
    tmp_path: Path,
    server: TestServer,
    server2: TestServer,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_url = server2.url + "/hooks/T01/B02/s3cr3t-t0k3n-value"
    ch = webhook_channel("pager", webhook={"urlEnv": "ATLAS_SECRET_PAGER"})
    del ch["webhook"]["url"]
    server.state.metrics = source_errors(a=5)
    cfg = config(
        tmp_path / "data",
        rules=[
            rule("source-failing", "atlas_ingest_source_errors", threshold=3, channels=["pager"])
        ],
        channels=[ch],
        components=[component("core", server.url)],
    )
    path = write_config(tmp_path / "monitoring.json", cfg)
    s = dataclasses.replace(load_settings(path), port=0)
    agent = Agent(
        s,
        AgentDeps(clock=clock, units=RunningUnits(), env={"ATLAS_SECRET_PAGER": secret_url}),
        path,
        outbox.RetryPolicy(1.0, 2.0),
    )
    agent.open()
    try:
        server2.state.status = 404
        server2.state.error_body = "no such hook: {path} (url " + secret_url + ")"
        caplog.set_level("DEBUG")
        agent.cycle()
        agent.deliverer.deliver_due()
        clock.advance(5)
        server2.state.status = 500
        agent.cycle()
        assert server2.requests and server2.requests[0].path.endswith("s3cr3t-t0k3n-value")
        dump = "\n".join(agent.conn.iterdump())
        assert "no such hook: <redacted>" in dump
        metrics = agent.exporter.render().decode()
        for where in (dump, metrics, caplog.text):
            assert "s3cr3t-t0k3n-value" not in where
            assert "T01/B02" not in where
    finally:
        agent.close()


def test_no_data_can_itself_be_alerted_on(world: Any) -> None:
    cfg = json.loads(world.path.read_text())
    cfg["rules"].append(
        rule("dlq-unknown", "atlas_alert_rule_nodata", op="==", threshold=1, forSeconds=30,
             matchers=[{"label": "alertname", "op": "=", "value": "dlq"}])
    )  # fmt: skip
    cfg["rules"].append(rule("dlq", "atlas_dlq_size", threshold=100))
    world.path.write_text(json.dumps(cfg))
    agent = world.start()
    for _ in range(5):  # the dlq metric never shows up
        agent.cycle()
        agent.deliverer.deliver_due()
        world.clock.advance(10)
    (body,) = delivered(world.receiver)
    assert body["groupLabels"] == {"alertname": "dlq-unknown"}
    assert body["alerts"][0]["labels"]["alertname"] == "dlq-unknown"
