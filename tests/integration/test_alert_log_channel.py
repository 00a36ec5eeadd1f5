"""The log channel against a real systemd-journald (tests/support/journald.py): the
fields an operator queries with ``journalctl FIELD=value -o json``, priorities from
the severity (``-p crit``), the native protocol's binary and memfd forms, the JSON
Lines file and its rotation, stderr when no journald listens, a full disk — and no
secret in any of them."""

from __future__ import annotations

import io
import json
import os
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atlas.agent.settings import settings_from_dict
from atlas.alerting import outbox, store
from atlas.alerting.channels import Channel
from atlas.alerting.channels.log import LogChannel
from atlas.alerting.delivery import Deliverer, build_channel
from atlas.alerting.model import AlertPayload, Notification, build
from atlas.alerting.redact import Redactor
from atlas.alerting.settings import ChannelSettings
from atlas.alerting.smtp import SmtplibSmtp
from atlas.db import transaction
from atlas.errors import TemporaryDeliveryError
from atlas.monitoring.http import HttpxHttp
from seams.journald import JournalSocket
from seams.testing import FakeClock
from tests.conftest import _unavailable
from tests.support.journald import PrivateJournald, why_unavailable
from tests.support.monitoring import config

T0 = 1_700_000_000.0
SMTP_PASSWORD = "hunter2-very-secret-smtp"


@pytest.fixture(scope="module")
def journald() -> Iterator[PrivateJournald]:
    reason = why_unavailable()
    if reason:
        _unavailable(reason)
    j = PrivateJournald().start()
    try:
        yield j
    finally:
        j.stop()


def log_block(journald: PrivateJournald | None, **kw: Any) -> dict[str, Any]:
    block: dict[str, Any] = dict(kw)
    if journald is not None:
        block["journalSocket"] = str(journald.socket)
    return {"name": "journal", "type": "log", "sendResolved": True, "templates": {}, "log": block}


def email_block() -> dict[str, Any]:
    block = {"host": "127.0.0.1", "port": 9, "from": "a@x.test", "to": ["b@x.test"]}
    block |= {"username": "atlas", "passwordEnv": "SMTP_PW", "security": "none"}
    return {"name": "mail", "type": "email", "sendResolved": True, "templates": {}, "email": block}


def channels(
    tmp_path: Path, *blocks: dict[str, Any], env: dict[str, str] | None = None
) -> tuple[list[ChannelSettings], list[Channel]]:
    s = settings_from_dict(config(tmp_path, rules=[], channels=list(blocks)))
    redactor = Redactor()
    built = [
        build_channel(c, env or {}, http=HttpxHttp(), smtp=SmtplibSmtp(), redactor=redactor)
        for c in s.alerting.channels
    ]
    return list(s.alerting.channels), built


def alert(mount: str, status: str = "firing", severity: str = "critical", **ann: str) -> Any:
    return AlertPayload(
        status,  # type: ignore[arg-type]
        {"alertname": "disk-full", "severity": severity, "mount": mount, "team": "ops"},
        {"summary": f"Disk {mount} is full", **ann},
        T0 - 600,
        T0 if status == "resolved" else None,
        ("a" if mount == "/" else "b") * 16,
        97.0,
        "http://atlas.test/alerts",
    )


def note(*alerts: AlertPayload, rule: str = "disk-full", receiver: str = "journal") -> Notification:
    return build(
        receiver, rule, alerts, external_url="http://atlas.test", environment="prod", now=T0
    )


def one(entries: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(entries) == 1, entries
    return entries[0]


def test_a_notification_is_one_entry_with_queryable_fields(
    tmp_path: Path, journald: PrivateJournald
) -> None:
    _, (ch,) = channels(tmp_path, log_block(journald))
    ch.send(note(alert("/"), alert("/data")), "key-fields")
    e = one(journald.wait_entries("ATLAS_NOTIFICATION_KEY=key-fields"))
    assert e["PRIORITY"] == "2" and e["SYSLOG_IDENTIFIER"] == "atlas-alerts"
    assert e["MESSAGE"] == "[prod] FIRING:2 disk-full (critical)"
    assert e["ATLAS_ALERTNAME"] == e["ATLAS_RULE"] == "disk-full"
    assert (e["ATLAS_STATUS"], e["ATLAS_SEVERITY"]) == ("firing", "critical")
    assert (e["ATLAS_ENVIRONMENT"], e["ATLAS_CHANNEL"]) == ("prod", "journal")
    assert e["ATLAS_FINGERPRINT"] == ["a" * 16, "b" * 16]
    assert e["ATLAS_LABEL_MOUNT"] == ["/", "/data"] and e["ATLAS_LABEL_TEAM"] == "ops"
    assert e["ATLAS_STARTS_AT"] == "2023-11-14T22:03:20.000Z" and "ATLAS_ENDS_AT" not in e
    assert (e["ATLAS_FIRING"], e["ATLAS_RESOLVED"]) == ("2", "0")
    assert json.loads(e["ATLAS_LABELS"]) == {
        "alertname": "disk-full",
        "severity": "critical",
        "team": "ops",
    }
    assert json.loads(e["ATLAS_ANNOTATIONS"]) == {}
    alerts = json.loads(e["ATLAS_ALERTS"])
    assert [a["labels"]["mount"] for a in alerts] == ["/", "/data"]
    assert alerts[0]["annotations"] == {"summary": "Disk / is full"}
    by_label = journald.entries("ATLAS_LABEL_MOUNT=/data", "ATLAS_NOTIFICATION_KEY=key-fields")
    assert len(by_label) == 1, "a label value is a match like any field"


def test_resolved_carries_its_end(tmp_path: Path, journald: PrivateJournald) -> None:
    _, (ch,) = channels(tmp_path, log_block(journald))
    ch.send(note(alert("/", "resolved")), "key-resolved")
    e = one(journald.wait_entries("ATLAS_NOTIFICATION_KEY=key-resolved"))
    assert (
        e["ATLAS_STATUS"] == "resolved" and e["MESSAGE"] == "[prod] RESOLVED disk-full (critical)"
    )
    assert e["ATLAS_ENDS_AT"] == "2023-11-14T22:13:20.000Z"


def test_priority_follows_the_severity_so_p_crit_shows_critical_alerts(
    tmp_path: Path, journald: PrivateJournald
) -> None:
    _, (ch,) = channels(tmp_path, log_block(journald, identifier="atlas-prio"))
    for severity in ("critical", "warning", "info"):
        ch.send(note(alert("/", severity=severity), rule=f"r-{severity}"), f"prio-{severity}")
    found = journald.wait_entries("SYSLOG_IDENTIFIER=atlas-prio", count=3)
    assert {e["ATLAS_SEVERITY"]: e["PRIORITY"] for e in found} == {
        "critical": "2",
        "warning": "4",
        "info": "6",
    }
    crit = journald.entries("SYSLOG_IDENTIFIER=atlas-prio", priority="crit")
    assert [e["ATLAS_ALERTNAME"] for e in crit] == ["r-critical"]
    warn = journald.entries("SYSLOG_IDENTIFIER=atlas-prio", priority="warning")
    assert sorted(e["ATLAS_ALERTNAME"] for e in warn) == ["r-critical", "r-warning"]


def test_newlines_and_an_entry_too_big_for_a_datagram_arrive_whole(
    tmp_path: Path, journald: PrivateJournald
) -> None:
    _, (ch,) = channels(tmp_path, log_block(journald))
    runbook = "step 1\nstep 2\n\nstep 3"
    huge = "x" * 600_000  # over the socket's datagram limit: sent in a sealed memfd
    ch.send(note(alert("/", runbook=runbook, huge=huge)), "key-big")
    e = one(journald.wait_entries("ATLAS_NOTIFICATION_KEY=key-big"))
    assert json.loads(e["ATLAS_ANNOTATIONS"]) == {
        "huge": huge,
        "runbook": runbook,
        "summary": "Disk / is full",
    }


def test_no_secret_reaches_the_journal_or_the_file(
    tmp_path: Path, journald: PrivateJournald
) -> None:
    settings, (_, ch) = channels(
        tmp_path,
        email_block(),
        log_block(journald, file="alerts.jsonl"),
        env={"SMTP_PW": SMTP_PASSWORD},
    )
    leaky = alert("/", description=f"login failed with {SMTP_PASSWORD}")
    ch.send(note(leaky), "key-secret")
    e = one(journald.wait_entries("ATLAS_NOTIFICATION_KEY=key-secret"))
    assert "login failed with <redacted>" in e["ATLAS_ANNOTATIONS"]
    export = journald.journalctl("-o", "export", "ATLAS_NOTIFICATION_KEY=key-secret").stdout
    assert "ATLAS_ALERTS" in export and SMTP_PASSWORD not in export
    text = (tmp_path / "alerts.jsonl").read_text()
    assert "<redacted>" in text and SMTP_PASSWORD not in text
    assert settings[1].secret_envs == ()


def test_the_file_gets_one_json_line_each_and_rotates_by_size(
    tmp_path: Path, journald: PrivateJournald
) -> None:
    block = log_block(journald, file="alerts.jsonl", maxFileBytes=4000, keepFiles=2)
    _, (ch,) = channels(tmp_path, block)
    for i in range(12):
        ch.send(note(alert("/")), f"rot-{i}")
    path = tmp_path / "alerts.jsonl"
    files = [path, path.with_name("alerts.jsonl.1"), path.with_name("alerts.jsonl.2")]
    assert all(p.exists() for p in files) and not path.with_name("alerts.jsonl.3").exists()
    assert all(p.stat().st_size <= 4000 for p in files)
    lines = [json.loads(line) for p in reversed(files) for line in p.read_text().splitlines()]
    keys = [r["key"] for r in lines]
    assert keys == [f"rot-{i}" for i in range(12 - len(keys), 12)], "newest kept, in order"
    assert lines[-1]["priority"] == 2 and lines[-1]["alertname"] == "disk-full"
    assert lines[-1]["alerts"][0]["fingerprint"] == "a" * 16
    assert len(journald.entries("ATLAS_NOTIFICATION_KEY=rot-11")) == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away needs root")
def test_a_file_made_by_root_belongs_to_the_data_folders_owner(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, 65534, 65534)  # the agent's user; root runs `atlas alerts test`
    (s,), _ = channels(data, log_block(None, file="alerts.jsonl", journalSocket="/nonexistent"))
    LogChannel(s.name, s.settings, {}, Redactor(), stderr=io.StringIO()).send(  # type: ignore[arg-type]
        note(alert("/")), "key-owner"
    )
    st = (data / "alerts.jsonl").stat()
    assert (st.st_uid, st.st_gid) == (65534, 65534)


def test_a_full_disk_is_the_one_failure_and_sends_nothing(
    tmp_path: Path, journald: PrivateJournald
) -> None:
    _, (ch,) = channels(tmp_path, log_block(journald, file="alerts.jsonl"))
    (tmp_path / "alerts.jsonl").symlink_to("/dev/full")
    with pytest.raises(TemporaryDeliveryError, match=r"alerts.jsonl: the disk is full"):
        ch.send(note(alert("/")), "key-full")
    assert journald.entries("ATLAS_NOTIFICATION_KEY=key-full") == []


def test_without_a_journal_it_is_one_json_line_on_stderr_with_a_priority(
    tmp_path: Path,
) -> None:
    (s,), _ = channels(tmp_path, log_block(None, journalSocket=str(tmp_path / "no-socket")))
    err = io.StringIO()
    ch = LogChannel(s.name, s.settings, {}, Redactor(), stderr=err)  # type: ignore[arg-type]
    ch.send(note(alert("/", severity="warning")), "key-stderr")
    line = err.getvalue()
    assert line.startswith("<4>{") and line.endswith("}\n") and line.count("\n") == 1
    r = json.loads(line[3:])
    assert (r["alertname"], r["status"], r["severity"], r["key"]) == (
        "disk-full",
        "firing",
        "warning",
        "key-stderr",
    )


def test_through_the_outbox_every_attempt_in_the_history(
    tmp_path: Path, journald: PrivateJournald
) -> None:
    _, (ch,) = channels(tmp_path, log_block(journald))
    conn = store.open_db(tmp_path / "monitoring.db")
    clock = FakeClock(T0)
    deliverer = Deliverer(conn, {"journal": ch}, clock, rng=random.Random(1))
    with transaction(conn):
        outbox.enqueue(conn, note(alert("/")), clock.wall(), "key-outbox")
    assert deliverer.deliver_due() == 1
    e = one(journald.wait_entries("ATLAS_NOTIFICATION_KEY=key-outbox"))
    assert e["ATLAS_ALERTNAME"] == "disk-full"
    (row,) = conn.execute("SELECT state, attempts FROM outbox").fetchall()
    assert tuple(row) == ("delivered", 1)


def test_the_socket_seam_names_the_missing_journal(tmp_path: Path) -> None:
    sock = JournalSocket(tmp_path / "none")
    assert not sock.available()
    with pytest.raises(OSError):
        sock.send([("MESSAGE", "x")])
