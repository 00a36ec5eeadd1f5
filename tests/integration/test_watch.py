"""--watch behaviour: new commits, force pushes, signed push notifications, metrics.

The reconciler runs in a thread with the in-memory runtime; git, the watchdog on
refs, the HTTP endpoint and Prometheus are real.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx

from reconciler.watch.refs import RefsWatcher
from reconciler.watch.server import signature
from tests.support.git import commit, git
from tests.support.rigs import Watching


def test_a_new_commit_in_a_local_repository_is_applied_within_a_second(
    tmp_path: Path, remote
) -> None:
    bare, work = remote
    w = Watching(tmp_path / "root", str(bare), "main", None)
    watcher = RefsWatcher(bare, w.wake.set)
    watcher.start()
    try:
        w.start()
        new = commit(work, "base/sources.yaml", "interval: 1h", "interval: 2h")
        pushed_at = time.monotonic()
        git(work, "push", "-q", "origin", "main")
        result = w.wait_for(2, timeout=10)
        assert result.outcome == "applied" and result.revision == new
        assert time.monotonic() - pushed_at < 3.0  # well within the 60 s poll interval
    finally:
        watcher.stop()
        w.close()


def test_a_force_pushed_branch_is_followed(tmp_path: Path, remote) -> None:
    bare, work = remote
    first = git(work, "rev-parse", "HEAD")
    w = Watching(tmp_path / "root", str(bare), "main", None, interval=0.5)
    try:
        w.start()
        ahead = commit(work, "base/sources.yaml", "interval: 1h", "interval: 2h")
        git(work, "push", "-q", "origin", "main")
        deadline = time.monotonic() + 15
        while w.applied_sha() != ahead:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        git(work, "reset", "-q", "--hard", first)
        rewritten = commit(
            work, "base/sources.yaml", "interval: 1h", "interval: 4h", "rewritten history"
        )
        git(work, "push", "-q", "--force", "origin", "main")
        deadline = time.monotonic() + 15
        while w.applied_sha() != rewritten:
            assert time.monotonic() < deadline, "the force-pushed head was not applied"
            time.sleep(0.1)
        core = w.host.disk("/home/atlas/.config/atlas/core.json").read_text()
        assert '"intervalSeconds": 14400' in core
    finally:
        w.close()


def test_push_notifications_must_be_signed(tmp_path: Path, remote) -> None:
    bare, work = remote
    secret = b"hook-secret-for-tests"
    w = Watching(tmp_path / "root", str(bare), "main", secret)
    try:
        w.start()
        new = commit(work, "base/sources.yaml", "interval: 1h", "interval: 2h")
        git(work, "push", "-q", "origin", "main")
        url = f"http://127.0.0.1:{w.server.port}/hooks/git"
        body = b'{"ref": "refs/heads/main"}'
        for headers in (
            {},
            {"X-Atlas-Signature": "sha256=" + "0" * 64},
            {"X-Atlas-Signature": signature(b"wrong secret", body)},
        ):
            reply = httpx.post(url, content=body, headers=headers)
            assert reply.status_code == 401
        time.sleep(1.0)
        assert len(w.results) == 1 and w.applied_sha() != new, (
            "a refused request must change nothing"
        )
        reply = httpx.post(
            url, content=body, headers={"X-Hub-Signature-256": signature(secret, body)}
        )
        assert reply.status_code == 202
        assert w.wait_for(2, timeout=10).revision == new
        assert w.applied_sha() == new
    finally:
        w.close()


def test_metrics_endpoint(tmp_path: Path, remote) -> None:
    bare, _ = remote
    w = Watching(tmp_path / "root", str(bare), "main", None)
    try:
        w.start()
        body = httpx.get(f"http://127.0.0.1:{w.server.port}/metrics").text
        for name in (
            "atlas_reconcile_total",
            "atlas_reconcile_duration_seconds_bucket",
            "atlas_sync_info",
            "atlas_drift_resources",
            "atlas_last_successful_reconcile_timestamp_seconds",
            "atlas_rollbacks_total",
            "atlas_unit_healthy",
            "atlas_manifest_errors",
        ):
            assert name in body, name
        assert 'atlas_reconcile_total{result="success"} 1.0' in body
        assert httpx.get(f"http://127.0.0.1:{w.server.port}/healthz").status_code == 200
        done = subprocess.run(
            ["promtool", "check", "metrics"],
            input=body,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        w.close()
