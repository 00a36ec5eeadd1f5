"""Log channel: every notification becomes one structured journal entry.

The entry goes to journald by its native protocol (:mod:`seams.journald`) with fields
an operator can query (``journalctl -u atlas-monitoring ATLAS_ALERTNAME=api-down``)
and a priority from the severity (critical 2, warning 4, info 6: ``journalctl -p
crit`` shows the critical alerts). Where no journald listens, the same entry is one
JSON line on stderr behind a ``<N>`` priority prefix. With ``file`` set it is also
appended as a JSON line to that file in the agent's data folder, rotated by size.

The message is the subject template (a channel's ``subject`` override applies).
Every value passes the redactor first, so no channel's secret reaches the journal
or the file. The channel needs no secret and cannot be refused: a send fails
(temporarily, so the outbox retries) only when the file cannot be written — a full
disk — and then nothing was sent to the journal either.

Fields: ``MESSAGE``, ``PRIORITY``, ``SYSLOG_IDENTIFIER``, ``ATLAS_ALERTNAME``,
``ATLAS_RULE``, ``ATLAS_STATUS``, ``ATLAS_SEVERITY``, ``ATLAS_ENVIRONMENT``,
``ATLAS_CHANNEL``, ``ATLAS_NOTIFICATION_KEY``, ``ATLAS_GROUP_KEY``,
``ATLAS_EXTERNAL_URL``, ``ATLAS_STARTS_AT``, ``ATLAS_ENDS_AT`` (resolved only),
``ATLAS_FIRING``/``ATLAS_RESOLVED`` (counts), ``ATLAS_TEST`` (test notifications),
``ATLAS_FINGERPRINT`` (one per alert), ``ATLAS_LABEL_<NAME>`` (one per distinct
label value), and as JSON ``ATLAS_LABELS``, ``ATLAS_ANNOTATIONS`` (common to the
group) and ``ATLAS_ALERTS`` (each alert, as in the webhook format).
"""

from __future__ import annotations

import errno
import json
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from atlas.alerting.model import Notification, rfc3339, webhook_payload
from atlas.alerting.rotating import RotatingFile
from atlas.alerting.templates import render_message
from atlas.errors import ConfigError, TemporaryDeliveryError
from seams.journal import PRIORITY
from seams.journald import JOURNAL_SOCKET, Entry, JournalSocket, field_name

DEFAULT_IDENTIFIER = "atlas-alerts"
DEFAULT_MAX_FILE_BYTES = 10 * 1024 * 1024
DEFAULT_KEEP_FILES = 3
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class Journal(Protocol):
    def available(self) -> bool: ...
    def send(self, entry: Entry) -> None: ...


@dataclass(frozen=True)
class LogSettings:
    identifier: str = DEFAULT_IDENTIFIER
    file: Path | None = None  # in the agent's data folder
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    keep_files: int = DEFAULT_KEEP_FILES
    journal_socket: Path = JOURNAL_SOCKET

    @property
    def secret_envs(self) -> tuple[str, ...]:
        return ()


def log_settings(block: Mapping[str, Any], where: str, data_dir: Path) -> LogSettings:
    """A validated ``log`` block (``file`` is a name in ``data_dir``); ``where`` names
    the channel in errors."""
    identifier = block.get("identifier", DEFAULT_IDENTIFIER)
    if not _IDENTIFIER.match(identifier):
        raise ConfigError(
            f"{where}.log.identifier: {identifier!r} is not a syslog identifier "
            "(letters, digits and . _ @ -, at most 64)"
        )
    name = block.get("file")
    if name is not None and (not _FILE_NAME.match(name) or name.endswith(".")):
        raise ConfigError(
            f"{where}.log.file: {name!r} is not a file name in the data folder "
            "(letters, digits and . _ -, no folders, at most 128)"
        )
    s = LogSettings(
        identifier=identifier,
        file=data_dir / name if name is not None else None,
        max_file_bytes=int(block.get("maxFileBytes", DEFAULT_MAX_FILE_BYTES)),
        keep_files=int(block.get("keepFiles", DEFAULT_KEEP_FILES)),
        journal_socket=Path(block.get("journalSocket", JOURNAL_SOCKET)),
    )
    if s.max_file_bytes < 1:
        raise ConfigError(f"{where}.log.maxFileBytes: expected at least 1, got {s.max_file_bytes}")
    if not 0 <= s.keep_files <= 100:
        raise ConfigError(f"{where}.log.keepFiles: expected 0 to 100, got {s.keep_files}")
    return s


def severity_of(n: Notification) -> str:
    """The group's severity: its common label, else the highest of its alerts."""
    found = n.common_labels.get("severity")
    if found:
        return found
    seen = [a.labels.get("severity", "") for a in n.alerts]
    return min(seen, key=lambda s: PRIORITY.get(s, 6), default="info") or "info"


def record(n: Notification, key: str, message: str) -> dict[str, Any]:
    """What one notification says, as the JSON line of the file and of stderr."""
    severity = severity_of(n)
    body = webhook_payload(n)
    ends = [a.ends_at for a in n.alerts if a.ends_at is not None]
    out: dict[str, Any] = {
        "time": rfc3339(n.created_at),
        "priority": PRIORITY.get(severity, 5),
        "message": message,
        "alertname": n.rule,
        "rule": n.rule,
        "status": n.status,
        "severity": severity,
        "environment": n.environment,
        "channel": n.receiver,
        "key": key,
        "groupKey": n.group_key,
        "externalURL": n.external_url,
        "startsAt": rfc3339(min((a.starts_at for a in n.alerts), default=n.created_at)),
        "endsAt": rfc3339(max(ends)) if n.status == "resolved" and ends else None,
        "firing": len(n.firing),
        "resolved": len(n.resolved),
        "test": n.test,
        "labels": body["commonLabels"],
        "annotations": body["commonAnnotations"],
        "alerts": body["alerts"],
    }
    return out


def journal_entry(r: Mapping[str, Any], identifier: str) -> list[tuple[str, str]]:
    """The journal fields of a ``record``."""
    entry = [("MESSAGE", r["message"]), ("PRIORITY", str(r["priority"])),
             ("SYSLOG_IDENTIFIER", identifier)]  # fmt: skip
    plain = {"ALERTNAME": "alertname", "RULE": "rule", "STATUS": "status",
             "SEVERITY": "severity", "ENVIRONMENT": "environment", "CHANNEL": "channel",
             "NOTIFICATION_KEY": "key", "GROUP_KEY": "groupKey",
             "EXTERNAL_URL": "externalURL", "STARTS_AT": "startsAt", "ENDS_AT": "endsAt",
             "FIRING": "firing", "RESOLVED": "resolved"}  # fmt: skip
    entry += [(f"ATLAS_{f}", str(r[k])) for f, k in plain.items() if r[k] is not None]
    if r["test"]:
        entry.append(("ATLAS_TEST", "1"))
    entry += [("ATLAS_FINGERPRINT", a["fingerprint"]) for a in r["alerts"]]
    labels = sorted({(k, v) for a in r["alerts"] for k, v in a["labels"].items()})
    entry += [(f"ATLAS_LABEL_{field_name(k)}", v) for k, v in labels]
    for f, k in (("LABELS", "labels"), ("ANNOTATIONS", "annotations"), ("ALERTS", "alerts")):
        entry.append((f"ATLAS_{f}", json.dumps(r[k], sort_keys=True, ensure_ascii=False)))
    return entry


def scrub(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` with every string (keys too) passed through ``redact``."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(k): scrub(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v, redact) for v in value]
    return value


class LogChannel:
    type = "log"

    def __init__(
        self,
        name: str,
        s: LogSettings,
        templates: Mapping[str, str],
        redact: Callable[[str], str],
        *,
        journal: Journal | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.name = name
        self.s = s
        self.templates = dict(templates)
        self.redact = redact
        self.journal: Journal = journal or JournalSocket(s.journal_socket)
        self.stderr = stderr
        self.file = None
        if s.file is not None:
            self.file = RotatingFile(s.file, s.max_file_bytes, s.keep_files)

    def send(self, n: Notification, key: str) -> None:
        message = " ".join(render_message("subject", n, self.templates).split())
        r = scrub(record(n, key, message), self.redact)
        if self.file is not None:
            self._append(r)
        if self.journal.available():
            try:
                self.journal.send(journal_entry(r, self.s.identifier))
                return
            except OSError:
                pass  # journald went away or is full: stderr reaches it, or the operator
        self._stderr(r)

    def _append(self, r: Mapping[str, Any]) -> None:
        assert self.file is not None
        try:
            self.file.append(json.dumps(r, sort_keys=True, ensure_ascii=False))
        except OSError as exc:
            why = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else exc.strerror
            raise TemporaryDeliveryError(f"cannot append to {self.file.path}: {why}") from exc

    def _stderr(self, r: Mapping[str, Any]) -> None:
        stream = self.stderr or sys.stderr
        line = f"<{r['priority']}>" + json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n"
        try:
            stream.write(line)
            stream.flush()
        except (OSError, ValueError) as exc:
            raise TemporaryDeliveryError(f"cannot write the alert to stderr: {exc}") from exc
