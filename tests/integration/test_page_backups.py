"""Page backups on real SQLite: full snapshots while a writer keeps writing,
incrementals, point-in-time restore, damage detection, and restores that change
nothing when their input is bad."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from atlas.errors import BackupError
from atlas.services import capture, catalog, checks, retention, swap
from atlas.services.capture import Request
from atlas.services.units import NoUnits
from tests.integration.test_services import services_config
from tests.support.seeding import items, seed

T0 = 1_800_000_000.0
BATCH = 10


def make_db(path: Path, rows: int = 0, size: int = 400) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
    add(conn, rows, size)
    return conn


def add(conn: sqlite3.Connection, rows: int, size: int = 400) -> None:
    with conn:
        conn.executemany(
            "INSERT INTO t (body) VALUES (?)",
            [(hashlib.sha256(str(i).encode()).hexdigest() * (size // 64),) for i in range(rows)],
        )


def rows_of(path: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT id, body FROM t ORDER BY id").fetchall()
    finally:
        conn.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def take(db: Path, dest: Path, kind: str, at: float, pw: str | None = None) -> catalog.Manifest:
    return capture.create(Request(db, dest, kind, at, pw))


def restore_to(dest: Path, entry: catalog.Entry, target: Path, pw: str | None = None) -> None:
    entries = catalog.catalog(dest)
    swap.restore(dest, entries, entry, target, pw, NoUnits(), time.time())


WRITER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    with conn:
        conn.executemany("INSERT INTO t (body) VALUES (?)", [("w" * 400,)] * 10)
"""


def test_full_backup_while_a_writer_keeps_writing_is_one_consistent_point(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    make_db(db, 120_000).close()  # ~50 MB: a stepped online backup would restart forever
    # the worker: another process committing BATCH rows at a time, for at most 60 s
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), "60"])
    try:
        while len(rows_of(db)) == 120_000:
            time.sleep(0.01)
        manifests = [take(db, tmp_path / "b", "full", T0 + i) for i in range(2)]
        assert writer.poll() is None, "the backups only finished once the writer stopped"
    finally:
        writer.kill()
        writer.wait()
    entries = catalog.catalog(tmp_path / "b")
    live = rows_of(db)
    for entry, m in zip(entries, manifests, strict=True):
        target = tmp_path / f"{m.id}.db"
        restore_to(tmp_path / "b", entry, target)
        got = rows_of(target)
        # whole transactions only, and exactly the live rows as of that point
        assert len(got) % BATCH == 0 and len(got) == m.row_counts["t"]
        assert got == live[: len(got)]


def test_incrementals_store_only_changed_pages(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    conn = make_db(db, 20_000)
    full = take(db, tmp_path / "b", "full", T0)
    with conn:  # change 1% of the rows in place, in one stretch: about 1% of the pages
        conn.execute("UPDATE t SET body = upper(body) WHERE id % 20000 < 200")
    incr = take(db, tmp_path / "b", "incremental", T0 + 60)
    conn.close()
    assert incr.kind == "incremental" and incr.parent == full.id
    assert incr.payload_bytes * 10 < full.payload_bytes, (incr.payload_bytes, full.payload_bytes)
    assert incr.pages_stored <= full.page_count // 50, (incr.pages_stored, full.page_count)
    (target := tmp_path / "r.db").parent.mkdir(exist_ok=True)
    restore_to(tmp_path / "b", catalog.catalog(tmp_path / "b")[-1], target)
    assert rows_of(target) == rows_of(db)


def test_point_in_time_restore_reaches_each_point_exactly(tmp_path: Path) -> None:
    db, dest = tmp_path / "atlas.db", tmp_path / "b"
    conn = make_db(db, 500)
    expected = {}
    for step in range(4):
        kind = "full" if step == 0 else "incremental"
        m = take(db, dest, kind, T0 + step * 300, "pw")
        expected[m.id] = rows_of(db)
        with conn:
            conn.execute("DELETE FROM t WHERE id % 7 = ?", (step,))
        add(conn, 50)
    conn.close()
    entries = catalog.catalog(dest)
    assert [e.manifest.kind for e in entries] == ["full"] + ["incremental"] * 3
    for step, at in enumerate((T0 + 10, T0 + 300, T0 + 899, T0 + 5000)):
        point = catalog.point_at(entries, at)
        assert point.manifest.created == T0 + min(step, 3) * 300
        target = tmp_path / f"at-{step}.db"
        restore_to(dest, point, target, "pw")
        assert rows_of(target) == expected[point.manifest.id]
    with pytest.raises(BackupError, match="no usable backup at or before"):
        catalog.point_at(entries, T0 - 1)


def test_a_seeded_content_database_verifies_with_its_text_index(tmp_path: Path) -> None:
    db, dest = tmp_path / "atlas.db", tmp_path / "b"
    seed(db, {"a": items("lighthouse", 30)}).close()
    take(db, dest, "full", T0)
    seed(db, {"b": items("harbour", 5)}).close()
    take(db, dest, "incremental", T0 + 1)
    entries = catalog.catalog(dest)
    verdicts = checks.verify(dest, entries, entries, None)
    assert [v.ok for v in verdicts] == [True, True], verdicts
    assert entries[-1].manifest.row_counts["items"] == 35


def chain_of_three(tmp_path: Path, pw: str | None = None) -> tuple[Path, Path, list[catalog.Entry]]:
    db, dest = tmp_path / "atlas.db", tmp_path / "b"
    conn = make_db(db, 6000)  # a few MB: several chunks per full backup
    take(db, dest, "full", T0, pw)
    for i in (1, 2):
        add(conn, 200)
        take(db, dest, "incremental", T0 + i, pw)
    conn.close()
    return db, dest, catalog.catalog(dest)


def refused_and_untouched(
    tmp_path: Path, dest: Path, point: catalog.Entry, match: str, pw: str | None = "pw"
) -> None:
    """A restore of ``point`` over an existing database fails and leaves it as it was."""
    target = tmp_path / "live" / "atlas.db"
    if not target.exists():
        target.parent.mkdir(exist_ok=True)
        make_db(target, 10).close()
    before = sha(target), sorted(p.name for p in target.parent.iterdir())
    with pytest.raises(BackupError, match=match):
        restore_to(dest, point, target, pw)
    assert (sha(target), sorted(p.name for p in target.parent.iterdir())) == before


def test_a_flipped_byte_is_named_and_restores_nothing(tmp_path: Path) -> None:
    _, dest, entries = chain_of_three(tmp_path, "pw")
    pages = catalog.paths(dest, entries[1].manifest.id)["pages"]
    blob = bytearray(pages.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    pages.write_bytes(bytes(blob))
    verdicts = checks.verify(dest, entries, entries, "pw")
    assert [v.ok for v in verdicts] == [True, False, False]
    assert f"backup {entries[1].manifest.id}: " in str(verdicts[1].problem)
    assert "damaged or truncated" in str(verdicts[1].problem)
    assert f"chain fails at {entries[1].manifest.id}" in str(verdicts[2].problem)
    refused_and_untouched(tmp_path, dest, entries[2], "damaged or truncated")


def test_a_truncated_backup_is_unusable_and_listed_as_such(tmp_path: Path) -> None:
    _, dest, entries = chain_of_three(tmp_path)
    pages = catalog.paths(dest, entries[0].manifest.id)["pages"]
    pages.write_bytes(pages.read_bytes()[:-5000])
    listed = catalog.catalog(dest)
    assert not listed[0].usable and "bytes, the manifest says" in str(listed[0].problem)
    assert not listed[2].usable and "chain is broken" in str(listed[2].problem)
    refused_and_untouched(tmp_path, dest, listed[2], "cannot be restored", None)


def test_reordered_chunks_are_refused_even_with_a_matching_manifest(tmp_path: Path) -> None:
    _, dest, entries = chain_of_three(tmp_path, "pw")
    m = entries[0].manifest
    files = catalog.paths(dest, m.id)
    from tests.unit.test_sealing import frames

    header, parts = frames(files["pages"].read_bytes())
    assert len(parts) >= 3
    files["pages"].write_bytes(header + parts[1] + parts[0] + b"".join(parts[2:]))
    # the attacker also rewrites the manifest's hash of the file
    data = json.loads(files["manifest"].read_text())
    data["payload"]["sha256"] = sha(files["pages"])
    files["manifest"].write_text(json.dumps(data))
    refused_and_untouched(tmp_path, dest, catalog.catalog(dest)[0], "out of order")


def test_a_missing_incremental_breaks_the_later_ones(tmp_path: Path) -> None:
    _, dest, entries = chain_of_three(tmp_path)
    catalog.paths(dest, entries[1].manifest.id)["manifest"].unlink()
    listed = catalog.catalog(dest)
    assert [e.usable for e in listed] == [True, False]
    assert f"parent {entries[1].manifest.id} is missing" in str(listed[1].problem)
    refused_and_untouched(tmp_path, dest, listed[1], "chain is broken", None)
    # the next incremental builds on the newest usable backup, not the broken one
    m = take(tmp_path / "atlas.db", dest, "incremental", T0 + 10)
    assert m.parent == entries[0].manifest.id


def test_a_wrong_key_is_refused(tmp_path: Path) -> None:
    _, dest, entries = chain_of_three(tmp_path, "pw")
    (verdict, *_) = checks.verify(dest, entries, entries[:1], "not the key")
    assert not verdict.ok and "wrong passphrase" in str(verdict.problem)
    refused_and_untouched(tmp_path, dest, entries[2], "wrong passphrase", "not the key")


def test_restore_keeps_the_replaced_database_aside(tmp_path: Path) -> None:
    db, dest, entries = chain_of_three(tmp_path)
    target = tmp_path / "live.db"
    conn = make_db(target, 3)
    conn.close()
    old = rows_of(target)
    restore_to(dest, entries[-1], target)
    assert rows_of(target) == rows_of(db)
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith("live.db.replaced-")]
    assert rows_of(aside) == old


def test_a_killed_backup_leaves_nothing_listed_and_retention_keeps_chains(tmp_path: Path) -> None:
    db, dest, entries = chain_of_three(tmp_path)
    (dest / f".{catalog.new_id(T0 + 5, 'full')}.pages.partial").write_bytes(b"half")
    (dest / f"{catalog.new_id(T0 + 6, 'full')}.pages").write_bytes(b"no manifest")
    assert [e.manifest.id for e in catalog.catalog(dest)] == [e.manifest.id for e in entries]
    removed = retention.prune(dest, keep_last=1, max_age_s=None, now=T0 + 100)
    assert removed == [], "the kept incremental needs its parent and full backup"
    assert not (dest / f"{catalog.new_id(T0 + 6, 'full')}.pages").exists()
    take(db, dest, "full", T0 + 200)
    removed = retention.prune(dest, keep_last=1, max_age_s=None, now=T0 + 300)
    assert removed == [e.manifest.id for e in entries]
    assert not [p for p in dest.iterdir() if p.name.startswith(".") and p.name != ".lock"]


def run_until(argv: list[str], appears: Path, pattern: str) -> None:
    """Run ``atlas ARGV`` and SIGKILL it as soon as a file matching ``pattern`` appears."""
    proc = subprocess.Popen([sys.executable, "-m", "atlas", *argv])
    try:
        deadline = time.monotonic() + 60
        while not list(appears.glob(pattern)):
            assert proc.poll() is None, f"atlas {argv[:2]} ended before it could be killed"
            assert time.monotonic() < deadline, f"no {pattern} in {appears}"
            time.sleep(0.005)
    finally:
        proc.kill()
        proc.wait()


def test_sigkill_during_backup_and_restore_then_a_clean_retry(tmp_path: Path) -> None:
    db, dest = tmp_path / "atlas.db", tmp_path / "backups"
    make_db(db, 60_000).close()  # ~25 MB: long enough to be killed part-way
    config = str(services_config(tmp_path, db, {}))
    run_until(["backup", "create", "--config", config], dest, ".*.pages.partial")
    assert catalog.catalog(dest) == [], "a killed backup is not listed"
    m = take(db, dest, "full", T0)
    assert not [p for p in dest.iterdir() if p.name.endswith(".partial")]
    target = tmp_path / "live" / "atlas.db"
    target.parent.mkdir()
    make_db(target, 5).close()
    before = sha(target)
    argv = ["backup", "restore", m.id, "--config", config, "--to", str(target)]
    run_until(argv, target.parent, ".atlas.db.restoring")
    assert sha(target) == before, "a killed restore leaves the database as it was"
    restore_to(dest, catalog.catalog(dest)[0], target)
    assert rows_of(target) == rows_of(db)
