"""The state database's file, guarded: a damaged one is a clear error, never a traceback.

``Guarded`` wraps the SQLite connection of ``reconciler.state``: any ``sqlite3`` error
of a statement becomes a ``StateError`` that names the file and says what to do. A
corrupted page ("database disk image is malformed"), a file that is not a database,
a value that is not the JSON it should be: each says to move the file aside, after
which the next reconcile starts a new one (its history and inventory start afresh).
``check_file`` refuses, before SQLite opens it, a file that exists but is empty or is
not an SQLite database at all (SQLite would take an empty file for a new database).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from reconciler.errors import ReconcilerError

_MAGIC = b"SQLite format 3\x00"


class StateError(ReconcilerError):
    """The state database cannot be opened, is damaged, or is from a newer Atlas."""


def damaged(path: Path, what: str) -> StateError:
    return StateError(
        f"state database {path} is damaged: {what}. Nothing was changed; move it aside "
        f"(mv {path} {path}.damaged) and the next reconcile starts a new one "
        "(its history and inventory start afresh)"
    )


def check_file(path: Path) -> None:
    """Refuse an existing state file that is empty or not an SQLite database."""
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"cannot read state database {path}: {exc.strerror}") from exc
    if not head:
        raise damaged(path, "the file is empty (0 bytes)")
    if head != _MAGIC:
        raise damaged(path, "the file is not an SQLite database")


def loads(path: Path, text: str, where: str) -> Any:
    """JSON stored in the database, or the damaged-file error naming ``where``."""
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise damaged(path, f"{where} is not valid JSON ({exc})") from exc


class Rows(list[Any]):
    """A statement's rows, all fetched (a damaged page fails here, not in a caller)."""

    lastrowid: int | None = None

    def fetchone(self) -> Any:
        return self[0] if self else None


class Guarded:
    """The few connection methods the state store uses, with errors translated."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        self.raw = db
        self.path = path

    def _error(self, exc: sqlite3.Error) -> StateError:
        if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, I/O: not damage
            return StateError(f"cannot use state database {self.path}: {exc}")
        return damaged(self.path, str(exc))

    def execute(self, sql: str, params: Iterable[Any] = ()) -> Rows:
        try:
            cur = self.raw.execute(sql, tuple(params))
            rows = Rows(cur.fetchall())
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        rows.lastrowid = cur.lastrowid
        return rows

    def executemany(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        try:
            self.raw.executemany(sql, rows)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def executescript(self, script: str) -> None:
        try:
            self.raw.executescript(script)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def close(self) -> None:
        self.raw.close()
