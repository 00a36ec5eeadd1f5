"""``atlas services run``: backups (plain and encrypted, verified, retained),
restore, the dead-letter sweep, and database upkeep."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from atlas.cli import main
from atlas.core import settings as core_settings
from atlas.core.model import Job, JobResult
from atlas.core.scheduler import Schedule
from atlas.errors import BackupError
from atlas.resilience import dlq
from atlas.services import catalog, checks, sealing
from atlas.services.backup import list_backups, make_backup, prune, restore
from atlas.services.run import run as run_services
from atlas.services.settings import BackupSettings
from seams.testing import FakeClock
from tests.support.feeds import FeedServer, Reply, core_config, entries, envelope, rss20, write_json
from tests.support.feeds import source as source_cfg
from tests.support.seeding import items, seed

DAY = 86400.0


def services_config(
    tmp_path: Path, db: Path, backup: dict[str, Any] | None = None, **overrides: Any
) -> Path:
    cfg = envelope("services", db)
    cfg["backup"] = (
        None
        if backup is None
        else {
            "policy": "nightly",
            "destination": str(tmp_path / "backups"),
            "keepLast": 3,
            "maxAgeSeconds": None,
            "encrypt": False,
            "encryptionKeyEnv": None,
            "verify": True,
            "fullEverySeconds": 0,
            "drillEverySeconds": None,
            **backup,
        }
    )
    cfg.update(overrides)
    return write_json(tmp_path / "services.json", cfg)


def count_items(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
    finally:
        conn.close()


def rebuilt_items(tmp_path: Path, dest: Path, entry: catalog.Entry, pw: str | None = None) -> int:
    target = tmp_path / f"rebuilt-{entry.manifest.id}.db"
    checks.rebuild_checked(dest, catalog.chain_manifests(catalog.catalog(dest), entry), target, pw)
    return count_items(target)


def test_plain_backups_are_verified_copies_and_retained(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    seed(db, {"a": items("a", 25)}).close()
    config = services_config(tmp_path, db, {"keepLast": 2})
    clock = FakeClock(1_700_000_000.0)
    for _ in range(3):
        assert run_services(config, env={}, clock=clock) == 0
        clock.advance(DAY)
    dest = tmp_path / "backups"
    backups = catalog.catalog(dest)
    assert len(backups) == 2, "keepLast 2"
    assert [b.manifest.created for b in backups] == [
        1_700_000_000.0 + DAY,
        1_700_000_000.0 + 2 * DAY,
    ]
    for b in backups:
        assert b.manifest.kind == "full" and b.manifest.encryption is None
        assert catalog.paths(dest, b.manifest.id)["pages"].stat().st_mode & 0o777 == 0o600
        assert rebuilt_items(tmp_path, dest, b) == 25
    assert not [p for p in dest.iterdir() if p.name.startswith(".") and p.name != ".lock"]
    status = json.loads((dest / "status.json").read_text())
    assert status["lastVerifiedRestore"] == 1_700_000_000.0 + 2 * DAY


def test_incrementals_between_fulls_and_a_drill_as_the_policy_says(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    seed(db, {"a": items("a", 10)}).close()
    policy = {"keepLast": 50, "fullEverySeconds": 3 * 3600.0, "drillEverySeconds": 2 * 3600.0}
    config = services_config(tmp_path, db, policy)
    clock = FakeClock(1_700_000_000.0)
    for hour in range(5):
        seed(db, {f"h{hour}": items(f"h{hour}", 3)}).close()
        assert run_services(config, env={}, clock=clock) == 0
        clock.advance(3600.0)
    dest = tmp_path / "backups"
    kinds = [e.manifest.kind for e in catalog.catalog(dest)]
    assert kinds == ["full", "incremental", "incremental", "full", "incremental"]
    status = json.loads((dest / "status.json").read_text())
    assert status["lastDrill"] == 1_700_000_000.0 + 4 * 3600.0  # drills at 0h, 2h, 4h
    metrics = (dest / "atlas_backup.prom").read_text()
    assert 'atlas_backup_last_success_timestamp_seconds{kind="incremental"} 1700014400.0' in metrics
    assert "atlas_backup_last_verified_restore_timestamp_seconds 1700014400.0" in metrics
    assert 'atlas_backup_size_bytes{kind="full"}' in metrics
    assert "atlas_backup_verify_failures_total 0" in metrics


def test_max_age_removes_old_backups_but_never_the_newest(tmp_path: Path) -> None:
    dest = tmp_path / "b"
    dest.mkdir()
    for day in (1, 2, 3):
        stamp = f"202401{day:02d}T000000.000000Z"
        (dest / f"atlas-{stamp}.db").write_bytes(b"x")
    (dest / "unrelated.txt").write_text("keep me")
    now = 1_704_067_200.0 + 10 * DAY  # 2024-01-11
    removed = prune(dest, keep_last=10, max_age_s=DAY, now=now)
    assert sorted(p.name for p in removed) == [
        "atlas-20240101T000000.000000Z.db",
        "atlas-20240102T000000.000000Z.db",
    ]
    assert sorted(p.name for p in dest.iterdir()) == [
        "atlas-20240103T000000.000000Z.db",
        "unrelated.txt",
    ]


def test_encrypted_backup_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    seed(db, {"a": items("a", 40)}).close()
    config = services_config(
        tmp_path, db, {"encrypt": True, "encryptionKeyEnv": "ATLAS_SECRET_BACKUP_KEY"}
    )
    env = {"ATLAS_SECRET_BACKUP_KEY": "correct horse battery staple"}
    assert run_services(config, env=env, clock=FakeClock(1_700_000_000.0)) == 0
    dest = tmp_path / "backups"
    (backup,) = catalog.catalog(dest)
    assert backup.manifest.encryption == "AES-256-GCM"
    for name in ("pages", "digests"):
        raw = catalog.paths(dest, backup.manifest.id)[name].read_bytes()
        assert raw.startswith(sealing.MAGIC) and b"SQLite format" not in raw
        assert b"lighthouses" not in raw
    with pytest.raises(BackupError, match="wrong passphrase"):
        rebuilt_items(tmp_path, dest, backup, "wrong")
    assert rebuilt_items(tmp_path, dest, backup, env["ATLAS_SECRET_BACKUP_KEY"]) == 40


def test_tampered_or_truncated_encrypted_backup_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    seed(db, {"a": items("a", 5)}).close()
    settings = BackupSettings("p", tmp_path / "b", 1, None, True, "K", True)
    backup = make_backup(db, settings, 1_700_000_000.0, "pw")
    data = backup.path.read_bytes()
    cut = tmp_path / "cut.db.enc"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BackupError):
        restore(cut, tmp_path / "x.db", "pw")
    flipped = bytearray(data)
    flipped[100] ^= 1
    bad = tmp_path / "flipped.db.enc"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(BackupError):
        restore(bad, tmp_path / "y.db", "pw")


def test_missing_passphrase_fails_the_run_with_a_clear_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "atlas.db"
    seed(db, {"a": items("a", 1)}).close()
    config = services_config(tmp_path, db, {"encrypt": True, "encryptionKeyEnv": "ATLAS_SECRET_K"})
    assert run_services(config, env={}, clock=FakeClock()) == 1
    assert "passphrase variable ATLAS_SECRET_K is not set" in capsys.readouterr().err
    assert list_backups(tmp_path / "backups") == []


def test_backup_cli_list_and_restore(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "atlas.db"
    seed(db, {"a": items("a", 3)}).close()
    config = services_config(tmp_path, db, {})
    assert main(["services", "run", "--config", str(config)]) == 0
    capsys.readouterr()
    assert main(["backup", "list", "--config", str(config), "-o", "json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)["backups"]
    assert listed["usable"] and listed["kind"] == "full"
    target = tmp_path / "restore" / "atlas.db"
    argv = ["backup", "restore", listed["id"], "--config", str(config), "--to", str(target)]
    assert main(argv) == 0
    assert count_items(target) == 3


def test_dead_letter_sweep_and_upkeep(tmp_path: Path) -> None:
    with FeedServer() as srv:
        srv.routes["/f"] = Reply(500, b"down")
        db = tmp_path / "atlas.db"
        write_json(tmp_path / "core.json", core_config(db, [source_cfg("f", url=srv.url("/f"))]))
        config = services_config(tmp_path, db)
        store = seed(db, {})
        core = core_settings.load(tmp_path / "core.json")
        store.sync_sources(core.sources, ["f"], 1000.0)
        store.apply(JobResult(Job(core.sources[0]), "failed", 1000.0, 0.1), Schedule())
        store.close()
        # not due yet for the sweep: nothing is fetched
        assert run_services(config, env={}, clock=FakeClock(1001.0)) == 0
        assert srv.requests_to("/f") == []
        srv.routes["/f"] = Reply(body=rss20(entries("swept", 4)))
        assert run_services(config, env={}, clock=FakeClock(1000.0 + dlq.sweep_delay(1))) == 0
        assert len(srv.requests_to("/f")) == 1
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone() == (0,)
    assert conn.execute("SELECT COUNT(*) FROM items").fetchone() == (4,)
    conn.close()
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "upkeep checkpointed the WAL"
