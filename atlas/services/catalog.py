"""The backups in a destination folder: their manifests, chains and usability.

Each backup ``ID`` (``atlas-<UTC time>-full`` or ``-incr``) is three files: ``ID.pages``
(the sealed pages), ``ID.digests`` (the sealed page digests of the database at that
point, which the next incremental compares against) and ``ID.json``, its manifest,
written last by an atomic rename: a backup killed part-way has no manifest and is
not listed. A backup is usable when its files are there and so is every link of its
chain back to a full backup; ``list`` says what is missing otherwise.
"""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlas.errors import BackupError

FORMAT = 2
ID = re.compile(r"^atlas-(\d{8}T\d{6}\.\d{6}Z)-(full|incr)$")
KINDS = {"full": "full", "incremental": "incr"}


def _split(seconds: float) -> tuple[int, int]:
    """(whole seconds, microseconds) of ``seconds``, rounded to the microsecond."""
    whole, micro = divmod(round(seconds * 1_000_000), 1_000_000)
    return whole, micro


def exact(seconds: float) -> float:
    """``seconds`` as its microsecond text parses back: what manifests record."""
    whole, micro = _split(seconds)
    return float(f"{whole}.{micro:06d}")


def new_id(now: float, kind: str) -> str:
    whole, micro = _split(now)
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(whole)) + f".{micro:06d}Z"
    return f"atlas-{stamp}-{KINDS[kind]}"


def parse_time(text: str) -> float:
    """An ISO 8601 UTC time (``2026-12-02T17:00:00Z``, seconds optional) or epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    cleaned = text.strip().rstrip("Z").replace(" ", "T")
    base, _, fraction = cleaned.partition(".")
    for fmt in ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            whole = calendar.timegm(time.strptime(base, fmt))
        except ValueError:
            continue
        return float(f"{whole}.{fraction}") if fraction.isdigit() else float(whole)
    raise BackupError(f"expected a UTC time like 2026-12-02T17:00:00Z or epoch seconds: {text!r}")


def iso(seconds: float) -> str:
    whole, micro = _split(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{micro:06d}Z"


@dataclass(frozen=True)
class Manifest:
    id: str
    kind: str  # full | incremental
    parent: str | None
    created: float
    page_size: int
    page_count: int
    sha256: str  # of the database file this backup restores to
    schema_version: int
    row_counts: dict[str, int]
    payload_bytes: int
    payload_sha256: str
    pages_stored: int
    digests_sha256: str
    encryption: str | None  # AES-256-GCM or None
    compression: str = "zstd"

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "id": self.id,
            "kind": self.kind,
            "parent": self.parent,
            "created": self.created,
            "createdText": iso(self.created),
            "database": {
                "pageSize": self.page_size,
                "pageCount": self.page_count,
                "sha256": self.sha256,
                "schemaVersion": self.schema_version,
                "rowCounts": self.row_counts,
            },
            "payload": {
                "bytes": self.payload_bytes,
                "sha256": self.payload_sha256,
                "pages": self.pages_stored,
                "compression": self.compression,
                "encryption": self.encryption,
            },
            "digestsSha256": self.digests_sha256,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        db, payload = d["database"], d["payload"]
        return cls(
            id=str(d["id"]),
            kind=str(d["kind"]),
            parent=d["parent"],
            created=float(d["created"]),
            page_size=int(db["pageSize"]),
            page_count=int(db["pageCount"]),
            sha256=str(db["sha256"]),
            schema_version=int(db["schemaVersion"]),
            row_counts={str(k): int(v) for k, v in db["rowCounts"].items()},
            payload_bytes=int(payload["bytes"]),
            payload_sha256=str(payload["sha256"]),
            pages_stored=int(payload["pages"]),
            digests_sha256=str(d["digestsSha256"]),
            encryption=payload["encryption"],
            compression=str(payload["compression"]),
        )


@dataclass(frozen=True)
class Entry:
    """A listed backup: its manifest and, when it cannot be restored, why."""

    manifest: Manifest
    problem: str | None = None
    chain: tuple[str, ...] = field(default=())  # ids from its full backup to itself

    @property
    def usable(self) -> bool:
        return self.problem is None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.manifest.as_dict(),
            "usable": self.usable,
            "problem": self.problem,
            "chain": list(self.chain),
        }


def paths(dest: Path, backup_id: str) -> dict[str, Path]:
    return {
        "manifest": dest / f"{backup_id}.json",
        "pages": dest / f"{backup_id}.pages",
        "digests": dest / f"{backup_id}.digests",
    }


def _read_manifest(path: Path) -> Manifest | str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        manifest = Manifest.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return f"manifest {path.name} is unreadable: {exc}"
    if manifest.id != path.name.removesuffix(".json"):
        return f"manifest {path.name} names another backup ({manifest.id})"
    return manifest


def _own_problem(dest: Path, m: Manifest) -> str | None:
    p = paths(dest, m.id)
    if not p["pages"].is_file():
        return f"its pages file {p['pages'].name} is missing"
    size = p["pages"].stat().st_size
    if size != m.payload_bytes:
        return f"its pages file is {size} bytes, the manifest says {m.payload_bytes}"
    if not p["digests"].is_file():
        return f"its digests file {p['digests'].name} is missing"
    return None


def catalog(dest: Path) -> list[Entry]:
    """Every backup with a manifest in ``dest``, oldest first, each usable or not."""
    try:
        files = sorted(p for p in dest.iterdir() if ID.match(p.name.removesuffix(".json")))
    except FileNotFoundError:
        return []
    manifests: dict[str, Manifest] = {}
    unreadable: list[str] = []
    for path in files:
        if path.suffix != ".json":
            continue
        got = _read_manifest(path)
        if isinstance(got, str):
            unreadable.append(got)
        else:
            manifests[got.id] = got
    entries: dict[str, Entry] = {}
    for m in sorted(manifests.values(), key=lambda m: m.created):
        problem = _own_problem(dest, m)
        chain: tuple[str, ...] = (m.id,)
        if m.kind == "incremental":
            parent = entries.get(m.parent or "")
            if parent is None:
                problem = problem or f"its parent {m.parent} is missing: the chain is broken"
            else:
                chain = (*parent.chain, m.id)
                if not parent.usable:
                    problem = problem or f"its chain is broken at {m.parent}: {parent.problem}"
        entries[m.id] = Entry(m, problem, chain)
    return list(entries.values())


def find(entries: Sequence[Entry], backup_id: str) -> Entry:
    for e in entries:
        if e.manifest.id == backup_id:
            return e
    known = ", ".join(e.manifest.id for e in entries[-5:]) or "none"
    raise BackupError(f"no backup {backup_id!r} (newest: {known})")


def usable(entry: Entry) -> Entry:
    if not entry.usable:
        raise BackupError(f"backup {entry.manifest.id} cannot be restored: {entry.problem}")
    return entry


def point_at(entries: Sequence[Entry], at: float) -> Entry:
    """The newest usable backup taken at or before ``at``."""
    candidates = [e for e in entries if e.usable and e.manifest.created <= at]
    if not candidates:
        first = next((e for e in entries if e.usable), None)
        hint = f"the oldest usable one is {first.manifest.id}" if first else "there is none"
        raise BackupError(f"no usable backup at or before {iso(at)}: {hint}")
    return candidates[-1]


def chain_manifests(entries: Sequence[Entry], entry: Entry) -> list[Manifest]:
    by_id = {e.manifest.id: e.manifest for e in entries}
    return [by_id[i] for i in entry.chain]
