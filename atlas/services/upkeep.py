"""Database upkeep: let SQLite refresh its query statistics and fold the WAL back
into the main file (so it does not grow without bound between busy periods)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from atlas import db
from atlas.core.schema import MIGRATIONS
from atlas.errors import StorageError


def upkeep(database: Path, busy_timeout_s: float) -> dict[str, int]:
    """PRAGMA optimize and a WAL checkpoint; returns the checkpoint's page counts."""
    if not database.exists():
        return {"busy": 0, "log": 0, "checkpointed": 0}
    conn = db.connect(database, MIGRATIONS, busy_timeout_s)
    try:
        conn.execute("PRAGMA optimize")
        busy, log, checkpointed = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    except sqlite3.Error as exc:
        raise StorageError(f"upkeep of {database} failed: {exc}") from exc
    finally:
        conn.close()
    return {"busy": int(busy), "log": int(log), "checkpointed": int(checkpointed)}
