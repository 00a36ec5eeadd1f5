"""``atlas monitor`` as a real process: READY=1 over NOTIFY_SOCKET once it listens,
SIGKILL with notifications pending (nothing lost, nothing delivered twice),
SIGHUP reloads without losing alert state, SIGTERM stops cleanly, and a bad
config exits 1 with a clear message."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.monitoring import (
    TestServer,
    component,
    config,
    rule,
    source_failing,
    wait_for,
    webhook_channel,
    write_config,
)
from tests.support.net import free_port

pytestmark = pytest.mark.slow


def source_errors(**errors: int) -> str:
    lines = ["# TYPE atlas_ingest_source_errors gauge"]
    lines += [f'atlas_ingest_source_errors{{source="{s}"}} {n}' for s, n in errors.items()]
    return "\n".join(lines) + "\n"


class AgentProcess:
    def __init__(self, cfg: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.port = json.loads(cfg.read_text())["port"]
        self.log = log
        full = dict(os.environ)
        full.update(env or {})
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "atlas",
                    "monitor",
                    "--config",
                    str(cfg),
                    "--retry-initial",
                    "0.2",
                    "--retry-max",
                    "0.5",
                ],
                env=full,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text

    def healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(
                f"the agent exited ({self.proc.returncode}):\n{self.log.read_text()}"
            )
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def setup(tmp_path: Path, server: TestServer, server2: TestServer) -> Iterator[Any]:
    class S:
        pass

    s = S()
    s.component, s.receiver = server, server2
    server.state.metrics = source_errors(a=0)
    s.data = tmp_path / "data"
    s.cfg = config(
        s.data,
        rules=[source_failing(repeatIntervalSeconds=3600)],
        channels=[webhook_channel("hook", server2.url + "/hook")],
        components=[component("core", server.url)],
        port=free_port(),
        interval=0.3,
    )
    s.path = write_config(tmp_path / "monitoring.json", s.cfg)
    s.log = tmp_path / "agent.log"
    s.agents = []

    def start(env: dict[str, str] | None = None) -> AgentProcess:
        a = AgentProcess(s.path, s.log, env)
        s.agents.append(a)
        return a

    s.start = start
    yield s
    for a in s.agents:
        a.stop()


def db(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def outbox_states(data: Path) -> list[tuple[str, str]]:
    with db(data / "monitoring.db") as conn:
        return conn.execute(
            "SELECT rule || ':' || status, state FROM outbox ORDER BY id"
        ).fetchall()


def deliveries(receiver: TestServer) -> list[tuple[str, tuple[str, ...]]]:
    """(status, sources) of every notification the receiver accepted."""
    out = []
    for r in receiver.requests:
        if r.status == 200:
            body = r.json()
            out.append(
                (body["status"], tuple(sorted(a["labels"]["source"] for a in body["alerts"])))
            )
    return out


def test_sigkill_with_pending_notifications_loses_nothing_and_resends_nothing(setup: Any) -> None:
    agent = setup.start()
    wait_for(agent.healthy, 30, "the agent to answer /healthz")
    setup.component.state.metrics = source_errors(a=5)
    wait_for(lambda: deliveries(setup.receiver) == [("firing", ("a",))], 20, "a delivered")
    wait_for(
        lambda: outbox_states(setup.data) == [("source-failing:firing", "delivered")], 10, "commit"
    )

    setup.receiver.state.status = 503  # the channel goes down
    setup.component.state.metrics = source_errors(a=5, b=7)
    wait_for(
        lambda: sum(1 for r in setup.receiver.requests if r.status == 503) >= 3, 20, "retries of b"
    )
    assert outbox_states(setup.data)[-1] == ("source-failing:firing", "pending")
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(10)

    setup.receiver.state.status = 200  # the channel is back
    again = setup.start()
    wait_for(lambda: len(deliveries(setup.receiver)) >= 2, 30, "b delivered after the restart")
    wait_for(again.healthy, 10, "health")
    # a few more cycles: nothing else may arrive
    before = again.metrics()
    wait_for(lambda: again.metrics() != before, 10, "more cycles")
    import time

    time.sleep(1.5)
    assert deliveries(setup.receiver) == [("firing", ("a",)), ("firing", ("b",))]
    assert all(state == "delivered" for _, state in outbox_states(setup.data))
    keys = [r.headers["Idempotency-Key"] for r in setup.receiver.requests if r.status == 200]
    assert len(keys) == len(set(keys)) == 2
    with db(setup.data / "monitoring.db") as conn:
        results = [r for (r,) in conn.execute("SELECT result FROM delivery_attempts ORDER BY id")]
    assert results[0] == "success" and results[-1] == "success" and "retry" in results
    assert results.count("success") == 2


def notice(sock: socket.socket) -> str:
    """The next sd_notify message other than a STATUS= update of a cycle."""
    while (message := sock.recv(4096).decode()).startswith("STATUS="):
        pass
    return message


def test_ready_after_listening_reload_on_sighup_and_clean_stop(setup: Any, tmp_path: Path) -> None:
    sock_path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(30)
    setup.component.state.metrics = source_errors(a=5)
    agent = setup.start({"NOTIFY_SOCKET": str(sock_path)})
    first = sock.recv(4096).decode()  # after its first cycle, what it is doing
    assert re.fullmatch(
        r"STATUS=watching 1 components, \d+ rules; \d alert\(s\) firing; last cycle at [\d:]{8}",
        first,
    ), first
    message = notice(sock)
    assert message.startswith("READY=1")
    assert httpx.get(f"http://127.0.0.1:{agent.port}/healthz").status_code == 200, (
        "listening when ready"
    )
    wait_for(lambda: deliveries(setup.receiver) == [("firing", ("a",))], 20, "a delivered")

    cfg = json.loads(setup.path.read_text())
    cfg["rules"].append(rule("dlq", "atlas_dlq_size", threshold=100, channels=["hook"]))
    setup.path.write_text(json.dumps(cfg))
    agent.proc.send_signal(signal.SIGHUP)
    assert notice(sock) == "RELOADING=1"
    assert notice(sock).startswith("READY=1")
    wait_for(
        lambda: 'atlas_alert_rule_nodata{alertname="dlq"} 1.0' in agent.metrics(), 10, "new rule"
    )
    assert deliveries(setup.receiver) == [("firing", ("a",))], "the reload resent nothing"

    setup.path.write_text("{ broken")
    agent.proc.send_signal(signal.SIGHUP)
    assert notice(sock) == "RELOADING=1"
    assert "reload refused" in notice(sock)
    wait_for(
        lambda: "atlas_monitor_config_reload_success 0.0" in agent.metrics(), 10, "reload failure"
    )
    assert agent.healthy(), "a bad reload leaves the agent running with its rules"
    assert "atlas_alert_rules 2.0" in agent.metrics()

    agent.proc.send_signal(signal.SIGTERM)
    assert agent.proc.wait(20) == 0
    assert notice(sock) == "STOPPING=1"
    sock.close()


def test_a_bad_config_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    cfg = config(tmp_path, rules=[rule(channels=["nope"])])
    path = write_config(tmp_path / "monitoring.json", cfg)
    done = subprocess.run(
        [sys.executable, "-m", "atlas", "monitor", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "atlas: error: " in done.stderr and "no channel named 'nope'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "monitoring.db").exists(), "nothing was created"
