"""Taking a page backup: full (every page) or incremental (the pages changed since
the newest usable backup, its parent).

Both start from a consistent snapshot of the live database (``snapshot``) in the
destination folder; a full backup stores its pages, an incremental compares each
page's digest with its parent's and stores only those that differ (and the new page
count, so a shrunken database is cut back). The payload starts with a record that
repeats the manifest's key facts inside the authenticated stream. Everything is
written under ``.partial`` names, fsynced, and renamed into place with the manifest
last; one backup runs at a time per folder (a lock file), and a killed run's
leftovers are removed by the next.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from atlas.errors import BackupError
from atlas.services import catalog, snapshot
from atlas.services.catalog import Manifest
from atlas.services.sealing import SealedWriter, read_sealed
from seams.fsio import fsync_dir

PGNO = struct.Struct(">I")
LENGTH = struct.Struct(">I")


class _HashingFile:
    """A binary file that hashes what is written to it."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.fh.write(data)


@dataclass(frozen=True)
class Request:
    database: Path
    destination: Path
    kind: str  # full | incremental
    now: float
    passphrase: str | None
    busy_timeout_s: float = 10.0


@contextmanager
def folder_lock(dest: Path) -> Iterator[None]:
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(dest / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise BackupError(f"{dest}: another backup or prune is running on it") from exc
        yield
    finally:
        os.close(fd)


def _clean_partials(dest: Path) -> None:
    for leftover in dest.glob(".*.partial"):
        leftover.unlink(missing_ok=True)


def read_digests(dest: Path, m: Manifest, passphrase: str | None) -> list[bytes]:
    path = catalog.paths(dest, m.id)["digests"]
    if snapshot.file_sha256(path) != m.digests_sha256:
        raise BackupError(f"backup {m.id}: its digests file is damaged (SHA-256 differs)")
    with path.open("rb") as fh:
        data = b"".join(read_sealed(fh, passphrase))
    size = snapshot.DIGEST
    return [data[i : i + size] for i in range(0, len(data), size)]


def _parent(req: Request) -> Manifest | None:
    if req.kind != "incremental":
        return None
    usable = [e for e in catalog.catalog(req.destination) if e.usable]
    return usable[-1].manifest if usable else None


def _seal(path: Path, passphrase: str | None, chunks: Iterator[bytes]) -> tuple[int, str]:
    """Write ``chunks`` sealed to ``path``, fsynced; (size, sha256) of the file."""
    with path.open("wb") as raw:
        out = _HashingFile(raw)
        writer = SealedWriter(out, passphrase)  # type: ignore[arg-type]
        for chunk in chunks:
            writer.write(chunk)
        writer.close()
        raw.flush()
        os.fsync(raw.fileno())
    os.chmod(path, 0o600)
    return out.size, out.sha.hexdigest()


def create(req: Request) -> Manifest:
    """Take one backup as ``req`` says; its manifest."""
    with folder_lock(req.destination):
        _clean_partials(req.destination)
        try:
            return _create(req)
        finally:
            _clean_partials(req.destination)


def _create(req: Request) -> Manifest:
    dest = req.destination
    parent = _parent(req)
    kind = "incremental" if parent is not None else "full"
    backup_id = catalog.new_id(req.now, kind)
    snap = dest / f".{backup_id}.snapshot.partial"
    snapshot.snapshot(req.database, snap, req.busy_timeout_s)
    facts = snapshot.facts(snap)
    old = read_digests(dest, parent, req.passphrase) if parent is not None else []
    if parent is not None and parent.page_size != facts.page_size:
        old = []  # a VACUUM changed the page size: every page is new
    digests: list[bytes] = []
    stored = [0]
    head = {
        "id": backup_id,
        "kind": kind,
        "parent": parent.id if parent else None,
        "pageSize": facts.page_size,
        "pageCount": facts.page_count,
        "sha256": snapshot.file_sha256(snap),
    }

    def payload() -> Iterator[bytes]:
        record = json.dumps(head, sort_keys=True).encode()
        yield LENGTH.pack(len(record)) + record
        for number, page in snapshot.pages(snap, facts.page_size):
            d = snapshot.digest(page)
            digests.append(d)
            if number > len(old) or old[number - 1] != d:
                stored[0] += 1
                yield PGNO.pack(number) + page

    final = catalog.paths(dest, backup_id)
    partial = {k: p.with_name(f".{p.name}.partial") for k, p in final.items()}
    size, sha = _seal(partial["pages"], req.passphrase, payload())
    _, digests_sha = _seal(partial["digests"], req.passphrase, iter(digests))
    manifest = Manifest(
        id=backup_id,
        kind=kind,
        parent=head["parent"],  # type: ignore[arg-type]
        created=catalog.exact(req.now),
        page_size=facts.page_size,
        page_count=facts.page_count,
        sha256=str(head["sha256"]),
        schema_version=facts.schema_version,
        row_counts=facts.row_counts,
        payload_bytes=size,
        payload_sha256=sha,
        pages_stored=stored[0],
        digests_sha256=digests_sha,
        encryption="AES-256-GCM" if req.passphrase else None,
    )
    _write_manifest(partial["manifest"], manifest)
    os.replace(partial["pages"], final["pages"])
    os.replace(partial["digests"], final["digests"])
    os.replace(partial["manifest"], final["manifest"])
    fsync_dir(dest)
    return manifest


def _write_manifest(path: Path, manifest: Manifest) -> None:
    with path.open("w", encoding="utf-8") as fh:
        json.dump(manifest.as_dict(), fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, 0o600)
