"""``atlas backup restore`` on a real systemd user manager: it waits for (or refuses
beside) a running reconcile, the units that hold the database open are stopped for
the swap and started again, and a unit that was not running stays stopped."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

from atlas.cli import main
from reconciler.host.lock import reconcile_lock
from reconciler.host.paths import host_layout
from tests.integration.test_services import count_items, services_config
from tests.support.monitoring import wait_for
from tests.support.seeding import items, seed

pytestmark = [pytest.mark.systemd]

# holds the database open, like the worker, and says which file it opened
HOLDER = """
import os, sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT COUNT(*) FROM items").fetchone()
with open(sys.argv[2], "a") as fh:
    fh.write(f"{os.stat(sys.argv[1]).st_ino}\\n")
while True:
    time.sleep(1)
"""


def unit(manager: Any, name: str, db: Path, log: Path) -> None:
    folder = manager.config_home / "systemd" / "user"
    folder.mkdir(parents=True, exist_ok=True)
    script = manager.base / "holder.py"
    script.write_text(HOLDER)
    (folder / name).write_text(f"[Service]\nExecStart={sys.executable} {script} {db} {log}\n")


def test_restore_stops_and_starts_the_units_around_the_swap(
    systemd_user: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    db = tmp_path / "atlas.db"
    seed(db, {"a": items("a", 12)}).close()
    config = services_config(tmp_path, db, {})
    assert main(["backup", "create", "--config", str(config), "-o", "json"]) == 0
    backup_id = json.loads(capsys.readouterr().out)["id"]
    seed(db, {"b": items("b", 30)}).close()  # what the restore takes back

    logs = {n: tmp_path / f"{n}.log" for n in ("atlas-core.service", "atlas-api.service")}
    for name, log in logs.items():
        unit(systemd_user, name, db, log)
    systemd_user.systemctl("daemon-reload")
    systemd_user.systemctl("start", "atlas-core.service")
    wait_for(logs["atlas-core.service"].exists, 10, "atlas-core opened the database")
    before = systemd_user.show("atlas-core.service", "InvocationID")["InvocationID"]

    for key, value in systemd_user.env.items():
        monkeypatch.setenv(key, value)
    argv = ["backup", "restore", backup_id, "--config", str(config), "--scope", "user"]
    assert main([*argv, "--dry-run"]) == 2
    assert "would stop and start: atlas-core.service" in capsys.readouterr().out
    layout = host_layout("user", Path("/"), systemd_user.env)
    with reconcile_lock(Path(str(layout.reconciler_dir)) / "lock"):
        assert main([*argv, "--wait", "0.3"]) == 1
    assert f"a reconcile (PID {os.getpid()}) holds" in capsys.readouterr().err
    assert count_items(db) == 42, "refused: nothing restored"
    assert systemd_user.show("atlas-core.service", "InvocationID")["InvocationID"] == before
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "units stopped and started: atlas-core.service" in out
    assert count_items(db) == 12
    state = systemd_user.show("atlas-core.service", "ActiveState", "InvocationID")
    assert state["ActiveState"] == "active" and state["InvocationID"] != before
    new_inode = str(os.stat(db).st_ino)
    wait_for(
        lambda: logs["atlas-core.service"].read_text().split()[-1] == new_inode,
        10,
        "the restarted worker opened the restored file",
    )
    assert systemd_user.show("atlas-api.service", "ActiveState")["ActiveState"] == "inactive"
    assert not logs["atlas-api.service"].exists()
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("atlas.db.replaced-")]
    conn = sqlite3.connect(aside[0])
    assert conn.execute("SELECT COUNT(*) FROM items").fetchone() == (42,)
    conn.close()
