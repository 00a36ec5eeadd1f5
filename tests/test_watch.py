"""--watch behaviour: new commits, force pushes, signed push notifications, metrics.

The reconciler runs in a thread with the in-memory runtime; git, the watchdog on
refs, the HTTP endpoint and Prometheus are real.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import httpx

from reconciler import pipeline
from reconciler.loop import CycleResult, Options, Reconciler
from reconciler.metrics import ReconcilerMetrics
from reconciler.watch.refs import RefsWatcher
from reconciler.watch.server import ReconcilerServer, signature
from tests.gitutil import commit, git
from tests.hosts import FolderHost


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Watching:
    """A reconciler in --watch mode on a thread, with its HTTP endpoint."""

    def __init__(
        self, root: Path, repo: str, ref: str, secret: bytes | None, interval: float = 60.0
    ) -> None:
        self.host = FolderHost(root)
        self.metrics = ReconcilerMetrics()
        self.reconciler = Reconciler(
            pipeline.Target(repo, ref, ".", "development"),
            self.host.host,
            self.host.store,
            lambda env: None,
            metrics=self.metrics,
            options=Options(stable_for=0.1),
        )
        self.stop, self.wake = threading.Event(), threading.Event()
        self.results: list[CycleResult] = []
        self.cycled = threading.Condition()
        self.server = ReconcilerServer(
            "127.0.0.1",
            free_port(),
            self.metrics.exposition,
            lambda: True,
            lambda reason: self.wake.set(),
            secret,
        )
        self.server.start()
        self.thread = threading.Thread(
            target=self.reconciler.watch,
            args=(self.stop, self.wake, interval, self._on_cycle),
            daemon=True,
        )

    def _on_cycle(self, result: CycleResult) -> None:
        with self.cycled:
            self.results.append(result)
            self.cycled.notify_all()

    def start(self) -> None:
        self.thread.start()
        self.wait_for(1)

    def wait_for(self, n: int, timeout: float = 20.0) -> CycleResult:
        with self.cycled:
            assert self.cycled.wait_for(lambda: len(self.results) >= n, timeout), (
                f"only {len(self.results)} cycle(s) after {timeout}s"
            )
            return self.results[n - 1]

    def applied_sha(self) -> str | None:
        record = self.host.store.last_applied("development")
        return record.sha if record else None

    def close(self) -> None:
        self.stop.set()
        self.wake.set()
        self.thread.join(timeout=20)
        self.server.stop()


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
