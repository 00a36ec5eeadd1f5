"""The agent under its real unit file: the reconciler renders atlas-monitoring for a
private systemd user manager, and the agent must come up inside that sandbox
(Type=notify, SystemCallFilter, ProtectSystem=strict, …), answer /healthz and
reload on `systemctl reload`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.support.examples import EXAMPLE
from tests.support.monitoring import wait_for
from tests.support.net import free_port

pytestmark = [pytest.mark.systemd, pytest.mark.slow]


def render_monitoring(manager, tmp_path: Path) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    from reconciler import pipeline
    from reconciler.host.paths import host_layout
    from reconciler.render.desired import HostFacts, RenderContext

    layout = host_layout("user", "/", manager.env)
    target = pipeline.Target(str(EXAMPLE), None, ".", "development")
    co = pipeline.fetch(target, tmp_path / "cache")
    ctx = RenderContext(layout, HostFacts.current(), target.invocation)
    rendered = pipeline.prepare(co, "development", ctx, None).rendered
    written = {}
    for f in rendered.files:
        if f.component != "monitoring":
            continue
        path = Path(str(f.path))
        path.parent.mkdir(parents=True, exist_ok=True)
        content = f.content
        if f.kind == "config":
            cfg = json.loads(content)
            cfg["port"] = free_port()  # never a fixed port in tests
            cfg["intervalSeconds"] = 1
            nobody = free_port()  # the components' ports may be in use (the demo's)
            for c in cfg["components"]:
                for key in ("healthURL", "metricsURL"):
                    if c[key]:
                        endpoint = c[key].rsplit("/", 1)[1]
                        c[key] = f"http://127.0.0.1:{nobody}/{endpoint}"
            content = json.dumps(cfg).encode()
        path.write_bytes(content)
        path.chmod(f.mode)
        written[f.kind] = path
    Path(str(layout.data_dir)).mkdir(parents=True, exist_ok=True)
    return written


def test_the_agent_runs_inside_its_rendered_unit(systemd_user, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    files = render_monitoring(systemd_user, tmp_path)
    cfg = json.loads(files["config"].read_text())
    systemd_user.systemctl("daemon-reload")
    started = systemd_user.systemctl("start", "atlas-monitoring.service", check=False)
    state = systemd_user.show("atlas-monitoring.service", "ActiveState", "Result", "MainPID")
    if started.returncode != 0 or state["ActiveState"] != "active":
        journal = systemd_user.systemctl("status", "atlas-monitoring.service", check=False).stdout
        raise AssertionError(f"the unit did not start: {started.stderr}\n{state}\n{journal}")
    # Type=notify: `start` returned, so READY=1 came, so /healthz answers now
    r = httpx.get(f"http://127.0.0.1:{cfg['port']}/healthz", timeout=5)
    assert r.status_code == 200, r.text
    metrics = httpx.get(f"http://127.0.0.1:{cfg['port']}/metrics", timeout=5).text
    assert 'atlas_system_disk_used_ratio{mount="/"}' in metrics
    assert 'atlas_alert_rule_nodata{alertname="source-failing"} 1.0' in metrics
    assert 'atlas_component_unit_active{component="core",unit="atlas-core.service"} 0.0' in metrics
    assert Path(cfg["database"]["path"]).exists()

    pid = systemd_user.show("atlas-monitoring.service", "MainPID")["MainPID"]
    reloaded = systemd_user.systemctl("reload", "atlas-monitoring.service", check=False)
    assert reloaded.returncode == 0, reloaded.stderr
    wait_for(
        lambda: (
            systemd_user.show("atlas-monitoring.service", "ActiveState")["ActiveState"] == "active"
        ),
        10,
        "active after the reload",
    )
    assert systemd_user.show("atlas-monitoring.service", "MainPID")["MainPID"] == pid
    wait_for(
        lambda: (
            "atlas_monitor_config_reload_success 1.0"
            in httpx.get(f"http://127.0.0.1:{cfg['port']}/metrics", timeout=5).text
        ),
        10,
        "reloaded",
    )
    stopped = systemd_user.systemctl("stop", "atlas-monitoring.service", check=False)
    assert stopped.returncode == 0
    result = systemd_user.show("atlas-monitoring.service", "Result")["Result"]
    assert result == "success", "a clean stop, not a crash or a timeout"
    time.sleep(0.1)
