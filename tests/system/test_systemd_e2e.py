"""End to end against a real systemd manager and the real Atlas services.

Each test boots a private systemd user manager (tests/sysd.py), pushes the example
manifests (with free ports) to a bare git repository, and runs the real
``atlas reconcile`` command against it. Under CI=true these must run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from atlas.usermanager import PrivateManager
from tests.support.git import commit, git
from tests.support.sites import Site

pytestmark = [pytest.mark.systemd, pytest.mark.slow]


@pytest.fixture
def site(systemd_user: PrivateManager) -> Site:
    return Site(systemd_user, systemd_user.base / "repos")


def converged(site: Site) -> str:
    done = site.reconcile()
    assert done.returncode == 0, done.stdout + done.stderr
    return git(site.work, "rev-parse", "HEAD")


def test_initial_converge_runs_every_service(site: Site) -> None:
    converged(site)
    for unit in ("atlas-core.service", "atlas-api.service", "atlas-monitoring.service"):
        assert site.state(unit) == "active/running", unit
    assert site.state("atlas-services.timer") == "active/waiting"
    ready = httpx.get(f"http://127.0.0.1:{site.api}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    deadline = time.monotonic() + 30
    while True:  # the bundled sources are ingested and served
        items = httpx.get(f"http://127.0.0.1:{site.api}/v1/items", timeout=5).json()
        titles = {i.get("title") for i in items.get("items", [])}
        if "Welcome to Atlas" in titles:
            break
        assert time.monotonic() < deadline, f"items never appeared: {items}"
        time.sleep(0.5)
    env_file = site.config_dir / "monitoring.env"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    report = site.status()
    assert report["sync"] == "Synced", report
    assert all(u["healthy"] for u in report["units"]), report["units"]
    # the monitoring agent understands what core and api export
    deadline = time.monotonic() + 60
    needed = (
        'atlas_component_up{component="api"} 1.0',
        'atlas_component_up{component="core"} 1.0',
        'atlas_component_http_requests_per_second{component="api"}',
        'atlas_component_ingest_backlog{component="core"}',
        'atlas_component_dlq_size{component="core"}',
    )
    while True:
        agent = httpx.get(f"http://127.0.0.1:{site.monitoring}/metrics", timeout=5).text
        missing = [n for n in needed if n not in agent]
        if not missing:
            break
        assert time.monotonic() < deadline, f"the agent never showed {missing}"
        time.sleep(1)
    again = site.reconcile()
    assert again.returncode == 0 and "synced" in again.stdout


def test_a_source_change_restarts_only_core(site: Site) -> None:
    converged(site)
    before = {
        u: site.pid(u)
        for u in ("atlas-core.service", "atlas-api.service", "atlas-monitoring.service")
    }
    site.change("base/sources.yaml", "interval: 1h", "interval: 2h")
    done = site.reconcile()
    assert done.returncode == 0, done.stderr
    assert site.pid("atlas-core.service") != before["atlas-core.service"]
    assert site.pid("atlas-api.service") == before["atlas-api.service"]
    assert site.pid("atlas-monitoring.service") == before["atlas-monitoring.service"]
    config = json.loads((site.config_dir / "core.json").read_text())
    assert {s["intervalSeconds"] for s in config["sources"] if s["name"] == "welcome"} == {7200}
    # and back by hand: atlas rollback re-applies the previous healthy revision
    back = site.atlas("rollback", "--scope", "user")
    assert back.returncode == 0, back.stdout + back.stderr
    config = json.loads((site.config_dir / "core.json").read_text())
    assert {s["intervalSeconds"] for s in config["sources"] if s["name"] == "welcome"} == {3600}
    assert site.state("atlas-core.service") == "active/running"
    history = json.loads(site.atlas("history", "--scope", "user", "--output", "json").stdout)
    assert [h["outcome"] for h in history[:2]] == ["applied", "rolled-back"]


def test_cosmetic_change_keeps_the_pid(site: Site) -> None:
    converged(site)
    pid = site.pid("atlas-api.service")
    unit = site.units_dir / "atlas-api.service"
    unit.write_text(
        unit.read_text().replace("# Managed by Atlas", "# Managed by Atlas (edited comment)")
    )
    done = site.reconcile()
    assert done.returncode == 0
    assert site.pid("atlas-api.service") == pid
    assert "(edited comment)" not in unit.read_text()


def test_removing_a_deployment_stops_and_removes_its_unit(site: Site) -> None:
    converged(site)
    foreign = site.units_dir / "not-atlas.service"
    foreign.write_text("[Service]\nExecStart=/bin/sleep 600\n")
    site.manager.systemctl("daemon-reload")
    site.manager.systemctl("start", "not-atlas.service")
    path = site.work / "base/deployments.yaml"
    path.write_text(
        "---\n".join(d for d in path.read_text().split("---\n") if "name: monitoring" not in d)
    )
    git(site.work, "commit", "-qam", "drop monitoring")
    site.push()
    done = site.reconcile()
    assert done.returncode == 0, done.stderr
    assert not (site.units_dir / "atlas-monitoring.service").exists()
    assert not (site.config_dir / "monitoring.json").exists()
    assert site.state("atlas-monitoring.service") in ("inactive/dead", "inactive/dead")
    assert site.state("not-atlas.service") == "active/running", (
        "units Atlas did not create are untouched"
    )
    assert foreign.exists()


def test_failing_api_is_rolled_back_and_metrics_say_so(site: Site) -> None:
    good = converged(site)
    good_api = (site.config_dir / "api.json").read_bytes()
    squatter = socket.socket()  # something else holds the port the new revision wants
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    try:
        watch = site.watch()
        try:
            bad = site.change(
                "environments/development/environment.yaml", f"port: {site.api}", f"port: {taken}"
            )
            os.kill(watch.pid, signal.SIGHUP)  # "a push": reconcile now
            deadline = time.monotonic() + 120
            while True:
                metrics = httpx.get(f"http://127.0.0.1:{site.reconciler}/metrics", timeout=5).text
                if "atlas_rollbacks_total 1.0" in metrics:
                    break
                assert time.monotonic() < deadline, metrics
                time.sleep(0.5)
            assert f'desired_revision="{bad[:12]}"' in metrics and 'status="Failed"' in metrics
            assert f'applied_revision="{good[:12]}"' in metrics
            assert (site.config_dir / "api.json").read_bytes() == good_api
            assert site.state("atlas-api.service") == "active/running"
            assert httpx.get(f"http://127.0.0.1:{site.api}/readyz", timeout=5).status_code == 200
        finally:
            watch.send_signal(signal.SIGTERM)
            out, _ = watch.communicate(timeout=60)
        assert watch.returncode == 0, out
    finally:
        squatter.close()
    history = json.loads(site.atlas("history", "--scope", "user", "--output", "json").stdout)
    outcomes = [(h["sha"], h["outcome"]) for h in history]
    assert (bad, "failed") in outcomes and outcomes[0] == (good, "applied")


def test_sigkill_after_each_action_still_converges(site: Site) -> None:
    """Kill a reconcile right after each of its actions in turn; the next one finishes it.

    The change restarts atlas-core (a Source) and reloads atlas-monitoring (a rule), so
    the plan holds config and unit writes, a daemon-reload, a reload and a restart.
    Rounds alternate between two revisions, each killed move starting where the
    previous round ended.
    """
    revisions = [converged(site)]
    revisions.append(site.change("base/sources.yaml", "interval: 1h", "interval: 2h"))
    commit(site.work, "base/alerting.yaml", "threshold: 100", "threshold: 250")
    site.push()
    revisions[1] = git(site.work, "rev-parse", "HEAD")
    dry = site.atlas("reconcile", "--dry-run", *site.reconcile_args(), "--output", "json")
    actions = [(a["action"], a["target"]) for a in json.loads(dry.stdout)["actions"]]
    assert {"write", "daemon-reload", "restart", "reload"} <= {verb for verb, _ in actions}, actions
    for n in range(1, len(actions) + 1):
        target = revisions[n % 2]
        git(site.work, "reset", "-q", "--hard", target)
        site.push("--force")
        core_pid = site.pid("atlas-core.service")
        killed = site.reconcile_killed_after(n)
        assert killed.returncode == -signal.SIGKILL, (n, killed.stderr)
        finished = site.reconcile()
        assert finished.returncode == 0, (n, finished.stdout, finished.stderr)
        assert site.pid("atlas-core.service") != core_pid, (
            f"killed after action {n}: core kept its old config"
        )
        for unit in ("atlas-core.service", "atlas-api.service", "atlas-monitoring.service"):
            assert site.state(unit) == "active/running", (n, unit)
        assert not list(site.config_dir.glob(".atlas-tmp-*")) and not list(
            site.units_dir.glob(".atlas-tmp-*")
        )
        interval = 7200 if target == revisions[1] else 3600
        core = json.loads((site.config_dir / "core.json").read_text())
        assert {s["intervalSeconds"] for s in core["sources"] if s["name"] == "welcome"} == {
            interval
        }
        report = site.status()
        assert report["sync"] == "Synced" and report["applied_revision"]["sha"] == target, (
            n,
            report,
        )


def test_hand_edits_are_detected_and_healed(site: Site) -> None:
    converged(site)
    unit = site.units_dir / "atlas-core.service"
    unit.write_text(unit.read_text().replace("MemoryMax=268435456", "MemoryMax=536870912"))
    (site.config_dir / "api.json").unlink()
    site.manager.systemctl("stop", "atlas-monitoring.service")
    report = site.status()
    kinds = {(d["kind"], Path(d["target"]).name) for d in report["drift"]}
    assert {
        ("file-modified", "atlas-core.service"),
        ("file-missing", "api.json"),
        ("unit-stopped", "atlas-monitoring.service"),
    } <= kinds
    assert report["sync"] == "OutOfSync"
    done = site.reconcile()
    assert done.returncode == 0, done.stderr
    assert "MemoryMax=268435456" in unit.read_text()
    assert (site.config_dir / "api.json").exists()
    assert site.state("atlas-monitoring.service") == "active/running"
    assert site.status()["drift"] == []


def test_two_concurrent_reconciles(site: Site) -> None:
    converged(site)
    site.change("base/sources.yaml", "interval: 1h", "interval: 2h")
    args = [sys.executable, "-m", "atlas", "reconcile", "--once", *site.reconcile_args()]
    procs = [
        subprocess.Popen(
            args, env=site.manager.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(p.wait(timeout=180), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes in ([0, 0], [0, 1]), results
    for code, _, err in results:
        if code == 1:
            assert "another reconcile (PID" in err and "was left alone" in err
    assert site.status()["sync"] == "Synced"
    waited = site.reconcile("--wait", "120")
    assert waited.returncode == 0


def test_an_invalid_commit_changes_nothing(site: Site) -> None:
    good = converged(site)
    files = {p: p.read_bytes() for p in site.config_dir.glob("*") if p.is_file()}
    pids = {u: site.pid(u) for u in ("atlas-core.service", "atlas-api.service")}
    bad = site.change("base/sources.yaml", "interval: 1h", "interval: whenever")
    done = site.reconcile()
    assert done.returncode == 1
    assert "spec.interval" in done.stdout + done.stderr
    assert {p: p.read_bytes() for p in site.config_dir.glob("*") if p.is_file()} == files
    assert {u: site.pid(u) for u in pids} == pids
    report = site.status()
    assert report["sync"] == "Failed"
    assert report["last_attempt"]["sha"] == bad and report["last_attempt"]["outcome"] == "invalid"
    assert report["applied_revision"]["sha"] == good


def test_a_wrongly_signed_webhook_changes_nothing(site: Site) -> None:
    """The repository is a file:// URL: no refs watcher, so only the webhook can wake the loop."""
    from reconciler.watch.server import signature

    url = f"file://{site.bare}"
    first = site.atlas("reconcile", "--once", *site.reconcile_args(url))
    assert first.returncode == 0, first.stderr
    secret = "e2e-hook-secret"
    watch = site.watch("--webhook-secret-env", "HOOK_SECRET", repo=url, env={"HOOK_SECRET": secret})
    try:
        time.sleep(1)
        pid = site.pid("atlas-core.service")
        site.change("base/sources.yaml", "interval: 1h", "interval: 3h")
        hook = f"http://127.0.0.1:{site.reconciler}/hooks/git"
        body = b'{"ref": "refs/heads/main"}'
        for headers in ({}, {"X-Atlas-Signature": signature(b"not the secret", body)}):
            assert httpx.post(hook, content=body, headers=headers).status_code == 401
        time.sleep(3)
        assert site.pid("atlas-core.service") == pid, "a refused push must change nothing"
        assert (
            httpx.post(
                hook, content=body, headers={"X-Atlas-Signature": signature(secret.encode(), body)}
            ).status_code
            == 202
        )
        deadline = time.monotonic() + 60
        while site.pid("atlas-core.service") == pid:
            assert time.monotonic() < deadline, "a signed push did not trigger a reconcile"
            time.sleep(0.2)
    finally:
        watch.send_signal(signal.SIGTERM)
        watch.communicate(timeout=60)
