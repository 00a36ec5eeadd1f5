"""``atlas backup create|list|verify|restore|prune`` through the command line, on
real databases: results, exit codes, and bad inputs that change nothing."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from atlas.cli import main
from tests.integration.test_services import count_items, services_config
from tests.support.seeding import items, seed

Capture = pytest.CaptureFixture[str]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cli(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def host(tmp_path: Path, capsys: Capture) -> tuple[Path, Path, list[str]]:
    """A database with a full and an incremental backup; (db, config, their ids)."""
    db = tmp_path / "atlas.db"
    seed(db, {"a": items("a", 20)}).close()
    config = services_config(tmp_path, db, {"keepLast": 1})
    code, out, _ = cli(capsys, "backup", "create", "--config", str(config), "-o", "json")
    assert code == 0
    full = json.loads(out)
    seed(db, {"b": items("b", 5)}).close()
    code, out, _ = cli(capsys, "backup", "create", "--kind", "incremental", "--config", str(config))
    assert code == 0 and "incremental" in out
    incr = out.split(":")[0]
    return db, config, [full["id"], incr]


def test_list_verify_and_restore_a_point_in_time(tmp_path: Path, capsys: Capture, host) -> None:  # type: ignore[no-untyped-def]
    _, config, (full, incr) = host
    code, out, _ = cli(capsys, "backup", "list", "--config", str(config), "-o", "json")
    listed = json.loads(out)["backups"]
    assert [b["id"] for b in listed] == [full, incr] and all(b["usable"] for b in listed)
    assert listed[1]["parent"] == full and listed[1]["database"]["rowCounts"]["items"] == 25
    code, out, _ = cli(capsys, "backup", "verify", "--all", "--config", str(config))
    assert code == 0 and out.splitlines() == [f"{full}: ok", f"{incr}: ok"]
    at = json.loads(Path(config.parent / "backups" / f"{full}.json").read_text())["createdText"]
    target = tmp_path / "restored.db"
    base = ["backup", "restore", "--config", str(config), "--to", str(target)]
    code, out, err = cli(capsys, *base, "--at", at, "--dry-run")
    assert code == 2 and f"would restore {full}" in out and not target.exists(), err
    code, out, _ = cli(capsys, *base, "--at", at, "-o", "json")
    assert code == 0 and json.loads(out)["point"] == full
    assert json.loads(out)["schemaVersion"] == listed[0]["database"]["schemaVersion"] > 0
    assert count_items(target) == 20
    code, out, _ = cli(capsys, *base, incr)
    assert code == 0 and "kept aside as" in out and count_items(target) == 25


def test_bad_restore_inputs_are_clear_errors_and_change_nothing(
    tmp_path: Path,
    capsys: Capture,
    host,  # type: ignore[no-untyped-def]
) -> None:
    _, config, (full, _) = host
    target = tmp_path / "live.db"
    conn = sqlite3.connect(target)
    conn.execute("CREATE TABLE keep (x)")
    conn.commit()
    conn.close()
    before = sha(target), sorted(p.name for p in tmp_path.iterdir())
    base = ["backup", "restore", "--config", str(config), "--to", str(target)]
    for argv, message in (
        ([], "say which point: a backup ID or --at TIME"),
        (["atlas-20000101T000000.000000Z-full"], "no backup 'atlas-20000101T000000.000000Z-full'"),
        (["--at", "yesterday"], "expected a UTC time like 2026-12-02T17:00:00Z"),
        (["--at", "2001-01-01"], "no usable backup at or before 2001-01-01T00:00:00"),
    ):
        code, out, err = cli(capsys, *base, *argv)
        assert code == 1 and message in err and "Traceback" not in err, err
        assert (sha(target), sorted(p.name for p in tmp_path.iterdir())) == before
    pages = config.parent / "backups" / f"{full}.pages"
    pages.write_bytes(pages.read_bytes()[:-1] + b"!")
    code, out, err = cli(capsys, *base, full)
    assert code == 1 and f"backup {full}: {full}.pages is damaged" in err
    assert (sha(target), sorted(p.name for p in tmp_path.iterdir())) == before
    code, out, err = cli(capsys, "backup", "verify", full, "--config", str(config))
    assert code == 1 and f"{full}: FAILED" in out


def test_prune_keeps_what_the_newest_needs(tmp_path: Path, capsys: Capture, host) -> None:  # type: ignore[no-untyped-def]
    _, config, ids = host
    code, out, _ = cli(capsys, "backup", "prune", "--config", str(config), "-o", "json")
    assert code == 0 and json.loads(out) == {"removed": []}, "keepLast 1, but its parent stays"
    code, out, _ = cli(capsys, "backup", "create", "--config", str(config))
    code, out, _ = cli(capsys, "backup", "prune", "--config", str(config), "-o", "json")
    assert json.loads(out) == {"removed": ids}


def test_an_encrypting_policy_without_its_passphrase_is_refused(
    tmp_path: Path, capsys: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "atlas.db"
    seed(db, {"a": items("a", 2)}).close()
    monkeypatch.delenv("ATLAS_SECRET_K", raising=False)
    config = services_config(tmp_path, db, {"encrypt": True, "encryptionKeyEnv": "ATLAS_SECRET_K"})
    code, _, err = cli(capsys, "backup", "create", "--config", str(config))
    assert code == 1 and "passphrase variable ATLAS_SECRET_K is not set" in err
    assert not (tmp_path / "backups").exists() or not list((tmp_path / "backups").glob("*.json"))


def test_whole_file_backups_of_earlier_releases_are_listed_and_restore(
    tmp_path: Path, capsys: Capture
) -> None:
    from atlas.services.backup import make_backup
    from atlas.services.settings import BackupSettings

    db = tmp_path / "atlas.db"
    seed(db, {"a": items("a", 4)}).close()
    config = services_config(tmp_path, db, {})
    old = make_backup(
        db, BackupSettings("p", tmp_path / "backups", 3, None, False, None, True), 1e9, None
    )
    code, out, _ = cli(capsys, "backup", "list", "--config", str(config), "-o", "json")
    assert json.loads(out) == {"backups": [], "files": [old.as_dict() | {"path": str(old.path)}]}
    target = tmp_path / "from-old.db"
    code, out, _ = cli(
        capsys, "backup", "restore", str(old.path), "--config", str(config), "--to", str(target)
    )
    assert code == 0 and count_items(target) == 4
