"""Rebuilding a database from a chain of page backups, and checking the result.

``rebuild`` writes the full backup's pages into a new file and lays each
incremental's pages over it, cutting the file to each point's page count; after
every step the file's SHA-256 must be the one its manifest recorded. ``check``
then runs ``PRAGMA integrity_check``, compares the schema version and row counts
with the manifest and runs one full-text query. Every failure is a BackupError
naming the backup and what is wrong with it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from atlas.errors import BackupError
from atlas.services import catalog, snapshot
from atlas.services.capture import LENGTH, PGNO
from atlas.services.catalog import Manifest
from atlas.services.sealing import read_sealed


class _Stream:
    """Exact reads over an iterator of chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks, self._buffer = chunks, bytearray()

    def read(self, n: int) -> bytes:
        while len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out


def _check_head(m: Manifest, head: dict[str, Any]) -> None:
    expected = {
        "id": m.id,
        "kind": m.kind,
        "parent": m.parent,
        "pageSize": m.page_size,
        "pageCount": m.page_count,
        "sha256": m.sha256,
    }
    wrong = sorted(k for k, v in expected.items() if head.get(k) != v)
    if wrong:
        raise BackupError(f"its manifest does not match its pages ({', '.join(wrong)} differ)")


def _apply(dest: Path, m: Manifest, fd: int, passphrase: str | None) -> None:
    path = catalog.paths(dest, m.id)["pages"]
    if snapshot.file_sha256(path) != m.payload_sha256:
        raise BackupError(f"{path.name} is damaged or truncated (its SHA-256 differs)")
    with path.open("rb") as fh:
        stream = _Stream(read_sealed(fh, passphrase))
        (length,) = LENGTH.unpack(stream.read(LENGTH.size))
        try:
            head = json.loads(stream.read(length))
        except ValueError as exc:
            raise BackupError("its first record is not the expected header") from exc
        _check_head(m, head)
        stored = 0
        while number_bytes := stream.read(PGNO.size):
            page = stream.read(m.page_size)
            (number,) = PGNO.unpack(number_bytes)
            if len(page) != m.page_size or not 1 <= number <= m.page_count:
                raise BackupError(f"page record {stored + 1} is malformed")
            os.pwrite(fd, page, (number - 1) * m.page_size)
            stored += 1
    if stored != m.pages_stored:
        raise BackupError(f"it holds {stored} pages, its manifest says {m.pages_stored}")
    os.ftruncate(fd, m.page_count * m.page_size)


def rebuild(
    dest: Path,
    chain: list[Manifest],
    into: Path,
    passphrase: str | None,
    after: Callable[[Manifest], None] | None = None,
) -> None:
    """Write the database at the last point of ``chain`` to ``into`` (a new file);
    ``after`` is called at each point, with the file as of that point."""
    fd = os.open(into, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        for m in chain:
            try:
                _apply(dest, m, fd, passphrase)
                os.fsync(fd)
                if snapshot.file_sha256(into) != m.sha256:
                    raise BackupError("the rebuilt database differs from the one backed up")
            except BackupError as exc:
                raise BackupError(f"backup {m.id}: {exc}") from exc
            if after is not None:
                after(m)
    except BaseException:
        into.unlink(missing_ok=True)  # never leave a half-rebuilt file behind
        raise
    finally:
        os.close(fd)


def check(path: Path, m: Manifest) -> None:
    """The rebuilt database at ``path`` is sound and holds what ``m`` recorded."""
    try:
        snapshot.integrity_check(path)
        facts = snapshot.facts(path)
        if facts.schema_version != m.schema_version:
            raise BackupError(
                f"schema version {facts.schema_version}, the manifest says {m.schema_version}"
            )
        if facts.row_counts != m.row_counts:
            differ = sorted(
                t
                for t in {*facts.row_counts, *m.row_counts}
                if facts.row_counts.get(t) != m.row_counts.get(t)
            )
            raise BackupError(f"row counts differ from the manifest in {', '.join(differ)}")
        _text_search(path)
    except BackupError as exc:
        raise BackupError(f"backup {m.id}: {exc}") from exc


def _text_search(path: Path) -> None:
    """One full-text query, when the database has the items index and an item."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema")}
            if not {"items", "items_fts"} <= names:
                return
            row = conn.execute("SELECT id, title FROM items WHERE title != '' LIMIT 1").fetchone()
            words = [w for w in (row[1] if row else "").split() if w.isalnum()]
            if not words:
                return
            found = conn.execute(
                "SELECT rowid FROM items_fts WHERE items_fts MATCH ?", (f'"{words[0]}"',)
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the full-text query failed: {exc}") from exc
    if (row[0],) not in found:
        raise BackupError(f"the full-text index does not find item {row[0]} by {words[0]!r}")
