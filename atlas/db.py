"""SQLite for the platform: WAL mode, a busy timeout, and ordered schema migrations.

Each database (the content database, the monitoring database) declares its own list
of ``Migration``s; ``connect`` applies the missing ones in one transaction each and
records them in ``schema_migrations``. Several processes may open the same database:
``BEGIN IMMEDIATE`` serialises migrators, and each re-checks the version it holds.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from atlas.errors import StorageError


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str | Callable[[sqlite3.Connection], None]


def connect(
    path: Path | str,
    migrations: Sequence[Migration] = (),
    busy_timeout: float = 5.0,
    readonly: bool = False,
) -> sqlite3.Connection:
    """Open ``path`` (creating it unless ``readonly``) and bring its schema up to date."""
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro",
                uri=True,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        if not readonly:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if migrations and not readonly:
            migrate(conn, migrations)
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open database {path}: {exc}") from exc
    return conn


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    ).fetchone()
    if row is None:
        return 0
    return int(
        conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
    )


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration]) -> int:
    """Apply missing migrations; returns how many ran. Refuses a database from the future."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    latest = max((m.version for m in migrations), default=0)
    applied = 0
    for migration in sorted(migrations, key=lambda m: m.version):
        if current_version(conn) >= migration.version:
            continue
        with transaction(conn):
            if current_version(conn) >= migration.version:  # another process got here first
                continue
            if callable(migration.sql):
                migration.sql(conn)
            else:
                for statement in _statements(migration.sql):
                    conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (migration.version, migration.name, time.time()),
            )
            applied += 1
    if current_version(conn) > latest:
        raise StorageError(
            f"database schema version {current_version(conn)} is newer than "
            f"this Atlas knows ({latest})"
        )
    return applied


def _statements(sql: str) -> Iterator[str]:
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer
            buffer = ""
    if buffer.strip():
        yield buffer


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction taken up front (BEGIN IMMEDIATE), committed or rolled back."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
