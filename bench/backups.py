"""Page backups of a large database; prints one JSON object.

    .venv/bin/python bench/backups.py [--mb 200] [--changed 0.01] [--passphrase pw]

Builds a content-like database of about ``--mb`` MB (text that compresses about as
well as feed items do), then times: SQLite's own one-step online backup (the
baseline), a full page backup (compressed, and encrypted with ``--passphrase``), an
incremental after changing ``--changed`` of the pages (rows in one stretch), and a
restore of the chain to a new file (rebuild, integrity check, row counts, swap).
Sizes in bytes, times in seconds, throughputs in MB/s of database.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from atlas.services import capture, catalog, swap
from atlas.services.units import NoUnits

WORDS = [os.urandom(4).hex() for _ in range(4000)]


def build(path: Path, megabytes: int) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, title TEXT, text TEXT)")
    rng = random.Random(14)
    rows = megabytes * 1000
    with conn:
        for start in range(0, rows, 10_000):
            conn.executemany(
                "INSERT INTO items (title, text) VALUES (?, ?)",
                [
                    (" ".join(rng.choices(WORDS, k=6)), " ".join(rng.choices(WORDS, k=110)))
                    for _ in range(min(10_000, rows - start))
                ],
            )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return rows


def timed(fn, *args):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args)
    return out, round(time.perf_counter() - start, 3)


def baseline(db: Path, into: Path) -> None:
    src, dst = sqlite3.connect(db), sqlite3.connect(into)
    src.backup(dst, pages=-1)
    dst.close()
    src.close()


def change(db: Path, fraction: float, rows: int) -> None:
    conn = sqlite3.connect(db)
    first = rows // 3
    with conn:
        conn.execute(
            "UPDATE items SET title = upper(title) WHERE id BETWEEN ? AND ?",
            (first, first + int(rows * fraction)),
        )
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--passphrase", default="bench passphrase")
    a = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atlas-bench-") as tmp:
        folder = Path(tmp)
        db, dest = folder / "atlas.db", folder / "backups"
        rows = build(db, a.mb)
        size = db.stat().st_size
        mb = size / 1e6
        _, base_s = timed(baseline, db, folder / "baseline.db")
        now = time.time()
        full, full_s = timed(capture.create, capture.Request(db, dest, "full", now, a.passphrase))
        change(db, a.changed, rows)
        req = capture.Request(db, dest, "incremental", now + 60, a.passphrase)
        incr, incr_s = timed(capture.create, req)
        entries = catalog.catalog(dest)
        target = folder / "restored.db"
        _, restore_s = timed(
            swap.restore, dest, entries, entries[-1], target, a.passphrase, NoUnits(), now + 120
        )
        changed_pages_bytes = incr.pages_stored * incr.page_size
        figures = {
            "database_bytes": size,
            "pages": full.page_count,
            "encrypted": bool(a.passphrase),
            "sqlite_backup_s": base_s,
            "full_bytes": full.payload_bytes,
            "full_s": full_s,
            "full_vs_sqlite_backup_throughput": round(base_s / full_s, 3),
            "changed_fraction_of_rows": a.changed,
            "incremental_pages": incr.pages_stored,
            "incremental_bytes": incr.payload_bytes,
            "incremental_vs_changed_pages_bytes": round(
                incr.payload_bytes / changed_pages_bytes, 3
            ),
            "incremental_s": incr_s,
            "restore_s": restore_s,
            "restore_mb_per_s": round(mb / restore_s, 1),
            "full_mb_per_s": round(mb / full_s, 1),
        }
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
