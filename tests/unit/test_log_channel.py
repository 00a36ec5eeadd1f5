"""The log channel's pure parts: the journal's native encoding byte by byte, field
names, its settings (and the clear error for each bad one), severity and fields."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from atlas.agent.settings import settings_from_dict
from atlas.alerting.channels.log import LogSettings, journal_entry, record, severity_of
from atlas.alerting.model import AlertPayload, build
from atlas.errors import ConfigError
from seams.journald import encode, field_name
from tests.support.monitoring import config


def test_encode_plain_and_binary_forms() -> None:
    data = encode([("MESSAGE", "hi"), ("ATLAS_X", "a\nb"), ("ATLAS_X", "é")])
    assert data == (
        b"MESSAGE=hi\n" + b"ATLAS_X\n" + struct.pack("<Q", 3) + b"a\nb\n" + "ATLAS_X=é\n".encode()
    )


@pytest.mark.parametrize("bad", ["message", "_PID", "A-B", "", "X" * 65])
def test_encode_refuses_invalid_field_names(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a journal field name"):
        encode([(bad, "v")])


def test_field_name_makes_a_valid_name() -> None:
    assert field_name("mount") == "MOUNT"
    assert field_name("__name__") == "NAME__"
    assert field_name("a.b-c") == "A_B_C"
    assert field_name("___") == "X"


def log(block: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    ch: dict[str, Any] = {"name": "j", "type": "log", "sendResolved": True, "templates": {}}
    if block is not None:
        ch["log"] = block
    return ch | extra


def load(tmp_path: Path, ch: dict[str, Any]) -> Any:
    return settings_from_dict(config(tmp_path, rules=[], channels=[ch]), "monitoring.json")


def test_a_log_channel_needs_no_block_and_no_secret(tmp_path: Path) -> None:
    (ch,) = load(tmp_path, log()).alerting.channels
    assert ch.settings == LogSettings() and ch.secret_envs == ()


def test_the_file_is_in_the_data_folder(tmp_path: Path) -> None:
    (ch,) = load(tmp_path, log({"file": "alerts.jsonl", "maxFileBytes": 5000})).alerting.channels
    assert ch.settings.file == tmp_path / "alerts.jsonl"
    assert ch.settings.max_file_bytes == 5000 and ch.settings.keep_files == 3


@pytest.mark.parametrize(
    ("block", "extra", "message"),
    [
        (
            {"file": "../etc/passwd"},
            {},
            r"channels\[0\]\.log\.file: '\.\./etc/passwd' is not a file",
        ),
        ({"file": "a/b"}, {}, r"log\.file: 'a/b' is not a file name in the data folder"),
        ({"identifier": "has space"}, {}, r"log\.identifier: 'has space' is not a syslog"),
        ({"keepFiles": 101}, {}, r"log\.keepFiles: expected 0 to 100, got 101"),
        ({"maxFileBytes": 0}, {}, r"log\.maxFileBytes: expected at least 1, got 0"),
        ({}, {"templates": {"text": "x"}}, r"uses only the subject template .* not 'text'"),
        ({}, {"webhook": {"url": "http://x"}}, r"a log channel cannot have a 'webhook' block"),
    ],
)
def test_bad_log_settings_are_clear_errors(
    tmp_path: Path, block: dict[str, Any], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        load(tmp_path, log(block, **extra))
    assert str(err.value).startswith("monitoring.json: channels[0]")


def alert(severity: str, fp: str) -> AlertPayload:
    labels = {"alertname": "r", "severity": severity, "path": "/x"}
    return AlertPayload("firing", labels, {"s": "t"}, 10.0, None, fp, 1.0, "http://g")


def test_severity_is_the_highest_when_alerts_differ() -> None:
    n = build("j", "r", [alert("info", "1"), alert("critical", "2")],
              external_url="http://e", environment="e", now=20.0)  # fmt: skip
    assert severity_of(n) == "critical"
    entry = journal_entry(record(n, "k", "msg"), "atlas-alerts")
    assert ("PRIORITY", "2") in entry and ("ATLAS_SEVERITY", "critical") in entry
    assert [v for k, v in entry if k == "ATLAS_LABEL_SEVERITY"] == ["critical", "info"]
    assert [v for k, v in entry if k == "ATLAS_FINGERPRINT"] == ["1", "2"]
    assert all(k.startswith(("ATLAS_", "MESSAGE", "PRIORITY", "SYSLOG_")) for k, _ in entry)
    encode(entry)  # every name valid
