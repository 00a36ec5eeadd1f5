"""``atlas api`` as real processes: two replicas on one port (SO_REUSEPORT),
readiness once listening, and a clean stop that leaves the other replica serving."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.feeds import NotifyListener, api_config, write_json
from tests.support.net import free_port
from tests.support.seeding import items, seed


def start_api(config: Path, instance: int, notify: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, NOTIFY_SOCKET=str(notify), WATCHDOG_USEC="400000")
    env.pop("WATCHDOG_PID", None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "atlas",
                "api",
                "--config",
                str(config),
                "--instance",
                str(instance),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


HEALTH_TIMEOUT_S = 30.0  # manifests/base/deployments.yaml: the api's healthCheck timeout


def test_two_replicas_share_the_port_and_stop_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    seed(db, {"a": items("a", 5)}).close()
    port = free_port()
    config = write_json(tmp_path / "api.json", api_config(db, port, replicas=2))
    listeners = [NotifyListener(tmp_path / f"notify{i}.sock") for i in (1, 2)]
    procs = [start_api(config, i, listeners[i - 1].path, tmp_path / f"api{i}.log") for i in (1, 2)]
    try:
        for listener in listeners:
            listener.wait_for("READY=1", timeout=60)  # the unit's TimeoutStartSec=
            listener.wait_for("WATCHDOG=1", timeout=5)
        # READY means listening: the very next request is answered
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=HEALTH_TIMEOUT_S) as client:
            assert client.get("/readyz").status_code == 200
            for _ in range(20):
                assert len(client.get("/v1/items").json()["items"]) == 5
        procs[0].send_signal(signal.SIGTERM)
        assert procs[0].wait(timeout=30) == 0
        listeners[0].wait_for("STOPPING=1", timeout=2)
        for _ in range(20):  # new connections all land on the replica still running
            # (within the health check timeout a Deployment gives the API: a busy machine
            # may be slow to answer, a connection sent to the stopped replica never is)
            resp = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=HEALTH_TIMEOUT_S)
            assert resp.status_code == 200
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        for listener in listeners:
            listener.close()
    assert procs[1].returncode == 0


def test_port_in_use_without_reuseport_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    config = write_json(tmp_path / "api.json", api_config(tmp_path / "atlas.db", port))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "atlas", "api", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        blocker.close()
    assert done.returncode == 1
    assert f"atlas: error: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
