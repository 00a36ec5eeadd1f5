"""A consistent copy of the live database, and what is known about a database file.

``snapshot`` copies the database with SQLite's online backup API in one step
(``pages=-1``): the copy holds one read transaction from the first page to the
last, so it is one consistent point even while the worker writes (WAL mode lets the
worker carry on), and it cannot livelock — a stepped backup restarts from page 1
whenever another connection writes between its steps. The copy is fsynced before
anything is built on it.

``facts`` reads a database file's page size and count, schema version and row
counts per table; ``page_digests`` hashes each page, which is what an incremental
backup compares to find the pages changed since its parent.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from atlas import db
from atlas.errors import BackupError, StorageError

DIGEST = 16  # bytes of BLAKE2b per page


@dataclass(frozen=True)
class Facts:
    page_size: int
    page_count: int
    schema_version: int
    row_counts: dict[str, int]


def snapshot(database: Path, into: Path, busy_timeout_s: float) -> None:
    """Copy ``database`` to ``into`` (a new file) as of one instant, fsynced."""
    if not database.exists():
        raise BackupError(f"database {database} does not exist; nothing to back up")
    try:
        src = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=busy_timeout_s)
        dst = sqlite3.connect(into)
        try:
            src.backup(dst, pages=-1)
            # a self-contained file: no -wal/-shm beside the copy
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
            src.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot copy {database}: {exc}") from exc
    fsync_file(into)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def facts(path: Path) -> Facts:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
            page_count = int(conn.execute("PRAGMA page_count").fetchone()[0])
            version = db.current_version(conn)  # the newest migration applied
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_schema WHERE type = 'table' AND sql NOT LIKE "
                    "'CREATE VIRTUAL%' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '%_fts_%'"
                    " ORDER BY name"
                )
            ]
            counts = {
                t: int(conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0])  # noqa: S608
                for t in tables
            }
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{path}: not a readable SQLite database: {exc}") from exc
    return Facts(page_size, page_count, version, counts)


def pages(path: Path, page_size: int) -> Iterator[tuple[int, bytes]]:
    """(page number from 1, its bytes) for every page of the file."""
    with path.open("rb") as fh:
        number = 1
        while page := fh.read(page_size):
            yield number, page
            number += 1


def digest(page: bytes) -> bytes:
    return hashlib.blake2b(page, digest_size=DIGEST).digest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def integrity_check(path: Path) -> None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{path}: not a readable SQLite database: {exc}") from exc
    if rows != [("ok",)]:
        problems = "; ".join(str(r[0]) for r in rows[:5])
        raise BackupError(f"integrity check failed: {problems}")
