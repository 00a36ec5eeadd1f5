#!/usr/bin/env python3
"""The monitoring agent at rest: CPU and memory at a 10 s interval with 50 rules and
5 scraped components. Targets: under 1% of one core, under 80 MB resident.

Five components on 127.0.0.1 (in this process) serve a realistic /metrics page of
about 220 series and /healthz; the agent (`atlas monitor`, a separate process)
scrapes and health-checks them, collects system metrics, asks systemctl for the
unit states, evaluates 50 rules (a few fire, notifying a local webhook) and serves
its own /metrics, which this script scrapes every 15 s as Prometheus would. As
root, the components' units run in a private systemd user manager (tests/sysd.py)
so that systemctl answers as on a real host; elsewhere systemctl fails and every
component counts as down (more alerts, a bit more work). After a warm-up of two
intervals, the agent's CPU time (its own and its children's: systemctl) is measured
over --duration and its RSS sampled every second. Prints JSON.

    .venv/bin/python bench/monitor_idle.py [--duration 180] [--interval 10]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._fixtures import Components


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_systemd(count: int) -> tuple[Any, dict[str, str]]:
    """A private systemd user manager running atlas-c0 … atlas-c{count-1}, if possible."""
    try:
        from atlas.usermanager import PrivateManager, why_unavailable
    except ImportError:
        return None, dict(os.environ)
    if why_unavailable():
        return None, dict(os.environ)
    manager = PrivateManager()
    try:
        manager.start()
        unit_dir = manager.config_home / "systemd" / "user"
        unit_dir.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (unit_dir / f"atlas-c{i}.service").write_text(
                "[Service]\nExecStart=/bin/sleep infinity\n"
            )
        manager.systemctl("daemon-reload")
        manager.systemctl("start", *(f"atlas-c{i}.service" for i in range(count)))
    except Exception:  # no usable manager here: measure without it
        manager.cleanup()
        return None, dict(os.environ)
    return manager, manager.env


def rules(count: int = 50) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        kind = i % 5
        if kind == 0:
            metric, matchers, op, threshold = (
                "atlas_ingest_source_errors",
                [{"label": "source", "op": "=", "value": f"feed-{i % 40:03d}"}],
                ">=",
                4,
            )
        elif kind == 1:
            metric, matchers, op, threshold = (
                "atlas_component_http_error_ratio",
                [{"label": "component", "op": "=~", "value": f"c{i % 5}|c{(i + 1) % 5}"}],
                ">",
                0.5,
            )
        elif kind == 2:
            metric, matchers, op, threshold = "atlas_component_up", [], "==", 0
        elif kind == 3:
            metric, matchers, op, threshold = (
                "atlas_system_disk_used_ratio",
                [{"label": "mount", "op": "=", "value": "/"}],
                ">",
                0.95,
            )
        else:
            metric, matchers, op, threshold = "atlas_component_dlq_size", [], ">", 30
        out.append(
            {
                "name": f"rule-{i:02d}",
                "metric": metric,
                "matchers": matchers,
                "op": op,
                "threshold": threshold,
                "forSeconds": 30,
                "keepFiringForSeconds": 0,
                "repeatIntervalSeconds": 14400,
                "severity": "warning",
                "channels": ["hook"],
                "labels": {},
                "annotations": {"summary": "{{ labels.component }} {{ value }}"},
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=float, default=180.0, help="seconds measured (default 180)"
    )
    parser.add_argument("--interval", type=float, default=10.0)
    args = parser.parse_args()
    comps = Components(6)  # five components and the webhook receiver
    manager, env = start_systemd(5)
    work = Path(tempfile.mkdtemp(prefix="atlas-bench-monitor-"))
    data = work / "data"
    port = free_port()
    cfg = {
        "configVersion": 1,
        "component": "monitoring",
        "environment": "bench",
        "version": "0.1.0",
        "logLevel": "warning",
        "dataDir": str(data),
        "database": {"path": str(data / "monitoring.db"), "busyTimeoutSeconds": 5},
        "listen": "127.0.0.1",
        "port": port,
        "intervalSeconds": args.interval,
        "externalURL": "http://127.0.0.1:8080",
        "scope": "user",
        "maintenanceFile": str(data / "maintenance.json"),
        "platformDatabase": str(data / "atlas.db"),
        "components": [
            {
                "name": f"c{i}",
                "component": "core",
                "units": [f"atlas-c{i}.service"],
                "job": None,
                "healthURL": comps.url(i) + "/healthz",
                "metricsURL": comps.url(i) + "/metrics",
                "timeoutSeconds": 5,
            }
            for i in range(5)
        ],
        "rules": rules(50),
        "channels": [
            {
                "name": "hook",
                "type": "webhook",
                "sendResolved": True,
                "templates": {},
                "webhook": {"url": comps.url(5) + "/hook", "timeoutSeconds": 5},
            }
        ],
    }
    path = work / "monitoring.json"
    path.write_text(json.dumps(cfg))
    log = (work / "agent.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "atlas", "monitor", "--config", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    agent = psutil.Process(proc.pid)
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the agent did not start:\n{(work / 'agent.log').read_text()}")
            time.sleep(0.2)
        time.sleep(2 * args.interval)  # warm-up: imports, first cycles, first notifications

        def cpu() -> float:
            t = agent.cpu_times()
            return t.user + t.system + t.children_user + t.children_system

        start_cpu, start = cpu(), time.monotonic()
        rss: list[int] = []
        scrapes = 0
        next_scrape = start
        while time.monotonic() - start < args.duration:
            rss.append(agent.memory_info().rss)
            if time.monotonic() >= next_scrape:
                httpx.get(metrics_url, timeout=5)
                scrapes += 1
                next_scrape += 15
            time.sleep(1)
        elapsed = time.monotonic() - start
        used = cpu() - start_cpu
        text = httpx.get(metrics_url, timeout=5).text
        firing = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("atlas_alert_active{") and 'state="firing"' in line
        )
        collection = next(
            float(line.split()[1])
            for line in text.splitlines()
            if line.startswith("atlas_monitor_collection_duration_seconds ")
        )
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        comps.close()
        log.close()
        if manager is not None:
            manager.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    cpu_percent = 100.0 * used / elapsed
    peak = max(rss) / 2**20
    result = {
        "benchmark": "monitor_idle",
        "interval_s": args.interval,
        "rules": 50,
        "components": 5,
        "measured_s": round(elapsed, 1),
        "cpu_percent_of_one_core": round(cpu_percent, 3),
        "rss_mb_peak": round(peak, 1),
        "rss_mb_last": round(rss[-1] / 2**20, 1),
        "firing_alerts": firing,
        "last_collection_s": round(collection, 4),
        "prometheus_scrapes": scrapes,
        "exit_code": proc.returncode,
        "systemd_units": manager is not None,
        "targets": {"cpu_percent": 1.0, "rss_mb": 80},
        "ok": cpu_percent < 1.0 and peak < 80,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
