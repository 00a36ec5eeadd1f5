"""``atlas maintenance``, ``atlas alerts list|history|test``: results on stdout,
clear errors on stderr with exit 1, secrets never shown."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from atlas import maintenance
from atlas.agent.agent import Agent, AgentDeps
from atlas.agent.settings import load_settings
from atlas.cli import main
from seams.testing import FakeClock, RunningUnits
from tests.support.monitoring import (
    TestServer,
    component,
    config,
    rule,
    source_errors,
    source_failing,
    webhook_channel,
    write_config,
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- maintenance


def test_maintenance_on_status_off(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path / "monitoring.json", config(tmp_path / "data"))
    file = tmp_path / "data" / "maintenance.json"
    code, out, _ = run(
        capsys, "maintenance", "on", "--for", "1h", "--reason", "db upgrade", "--config", str(path)
    )
    assert (
        code == 0
        and out.startswith("maintenance: on since ")
        and out.rstrip().endswith("— db upgrade")
    )
    window = maintenance.read(file)
    assert window is not None and window.reason == "db upgrade"
    assert window.until is not None and window.until - window.since == 3600
    code, out, _ = run(capsys, "maintenance", "status", "--config", str(path), "-o", "json")
    status = json.loads(out)
    assert code == 0 and status["active"] and status["reason"] == "db upgrade" and status["until"]
    code, out, _ = run(capsys, "maintenance", "off", "--config", str(path))
    assert code == 0 and out == "maintenance: off\n" and not file.exists()
    code, out, _ = run(capsys, "maintenance", "status", "--config", str(path))
    assert out == "maintenance: off\n"
    code, out, _ = run(capsys, "maintenance", "off", "--config", str(path))
    assert out == "maintenance: off (it was not on)\n"


def test_maintenance_without_a_config_uses_the_rendered_default_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", "/home/op")
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    code, _, _ = run(capsys, "maintenance", "on", "--scope", "user", "--root", str(tmp_path))
    assert code == 0
    file = tmp_path / "home/op/.local/state/atlas/data/maintenance.json"
    window = maintenance.read(file)
    assert window is not None and window.until is None and window.reason == "maintenance"


def test_maintenance_bad_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path / "monitoring.json", config(tmp_path / "data"))
    code, out, err = run(capsys, "maintenance", "on", "--for", "soon", "--config", str(path))
    assert code == 1 and not out
    assert err == "atlas: error: --for: expected a duration like 30s, 15m, 2h; got 'soon'\n"
    assert not (tmp_path / "data" / "maintenance.json").exists(), "nothing changed"


# ---------------------------------------------------------------- alerts list / history


@pytest.fixture
def history_db(tmp_path: Path, server: TestServer, server2: TestServer) -> Path:
    """A monitoring.db with an alert that fired, was delivered after one failure, and
    another that is pending; written by the real agent."""
    clock = FakeClock(time.time() - 600)
    server.state.metrics = source_errors(a=5, b=1)
    cfg = config(
        tmp_path / "data",
        rules=[
            source_failing(annotations={"summary": "source {{ labels.source }} failing"}),
            rule("slow", "atlas_ingest_source_errors", threshold=0, forSeconds=3600),
            rule("dlq", "atlas_dlq_size"),
        ],
        channels=[webhook_channel("hook", server2.url)],
        components=[component("core", server.url)],
    )
    path = write_config(tmp_path / "monitoring.json", cfg)
    s = dataclasses.replace(load_settings(path), port=0)
    agent = Agent(s, AgentDeps(clock=clock, units=RunningUnits(), system_metrics=False), path)
    agent.open()
    server2.state.statuses = [500]
    agent.cycle()
    agent.deliverer.deliver_due()
    clock.advance(10)
    agent.deliverer.deliver_due()
    agent.close()
    return path


def test_alerts_list(history_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "alerts", "list", "--config", str(history_db))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(
        'firing   warning  source-failing {component="core", source="a"} value=5 since '
    )
    assert lines[0].endswith("source a failing")
    assert sum(1 for line in lines if line.startswith("pending  warning  slow ")) == 2
    assert "no data  rule dlq since " in out
    code, out, _ = run(capsys, "alerts", "list", "--config", str(history_db), "-o", "json")
    data = json.loads(out)
    assert [a["rule"] for a in data["alerts"]] == ["source-failing", "slow", "slow"]
    assert data["noData"][0]["rule"] == "dlq" and data["pendingNotifications"] == []


def test_alerts_history(history_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "alerts", "history", "--config", str(history_db), "--since", "1h")
    assert code == 0
    assert (
        'state     source-failing {component="core", source="a"}: inactive -> firing value=5' in out
    )
    assert "state     dlq (rule): ok -> nodata (no series matches atlas_dlq_size)" in out
    assert (
        "delivery  source-failing firing to hook attempt 1: retry: webhook answered HTTP 500" in out
    )
    assert "delivery  source-failing firing to hook attempt 2: success" in out
    code, out, _ = run(
        capsys,
        "alerts",
        "history",
        "--config",
        str(history_db),
        "-o",
        "json",
        "--since",
        "2000-01-01T00:00:00Z",
    )
    events = json.loads(out)["events"]
    assert [e["kind"] for e in events].count("delivery") == 2
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    code, out, _ = run(capsys, "alerts", "history", "--config", str(history_db), "--since", "1s")
    assert out.startswith("nothing since ")


def test_alerts_history_bad_since(history_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "alerts", "history", "--config", str(history_db), "--since", "yesterday"
    )
    assert code == 1 and "--since: expected a duration like 2h or an ISO 8601 time" in err


def test_alerts_list_without_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path / "monitoring.json", config(tmp_path / "data"))
    code, _, err = run(capsys, "alerts", "list", "--config", str(path))
    assert code == 1 and "the monitoring database does not exist yet" in err


# ---------------------------------------------------------------- alerts test


def test_alerts_test_delivers_and_is_recorded(
    history_db: Path, server2: TestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(server2.requests)
    code, out, _ = run(capsys, "alerts", "test", "hook", "--config", str(history_db))
    assert code == 0 and out.startswith("test notification delivered to hook (webhook) in ")
    body = server2.requests[before].json()
    assert body["alerts"][0]["labels"]["alertname"] == "AtlasTestNotification"
    assert body["status"] == "firing" and body["receiver"] == "hook"
    code, out, _ = run(capsys, "alerts", "history", "--config", str(history_db))
    assert "delivery  AtlasTestNotification firing to hook attempt 1: success" in out


def test_alerts_test_failure_exits_1_and_never_shows_the_secret_url(
    tmp_path: Path,
    server: TestServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret_url = server.url + "/hooks/very-secret-token-42"
    ch = webhook_channel("pager", webhook={"urlEnv": "ATLAS_SECRET_PAGER_URL"})
    del ch["webhook"]["url"]
    path = write_config(
        tmp_path / "monitoring.json", config(tmp_path / "data", rules=[], channels=[ch])
    )
    (tmp_path / "monitoring.env").write_text(f'ATLAS_SECRET_PAGER_URL="{secret_url}"\n')
    monkeypatch.delenv("ATLAS_SECRET_PAGER_URL", raising=False)
    server.state.status = 404
    server.state.error_body = "unknown hook {path}"
    code, out, err = run(capsys, "alerts", "test", "pager", "--config", str(path), "-o", "json")
    assert code == 1
    result = json.loads(out)
    assert result["result"] == "failed"
    assert result["error"] == "webhook answered HTTP 404: unknown hook <redacted>"
    assert "very-secret-token-42" not in out + err
    assert server.requests[0].path == "/hooks/very-secret-token-42", "the env file was read"


def test_alerts_test_unknown_channel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path / "monitoring.json", config(tmp_path / "data"))
    code, _, err = run(capsys, "alerts", "test", "nope", "--config", str(path))
    assert code == 1 and err == "atlas: error: no channel named 'nope' (channels: hook)\n"


def test_the_commands_are_registered(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for verb in ("monitor", "alerts", "maintenance"):
        assert verb in out
    _: Any = None
