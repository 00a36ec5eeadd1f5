"""``atlas doctor`` on a converged folder host (the in-memory runtime; real state
database, unit files, git repository, SQLite content database, listening sockets and
backups folder): every check passes, then each is broken the way a host breaks and
is reported with its fix. And the command line: exit codes and JSON."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest

from atlas.cli import main
from atlas.commands.doctor import newest_backup
from atlas.core.store import open_store
from reconciler.diagnose import checks
from reconciler.diagnose.doctor import diagnose
from reconciler.diagnose.gather import Probes, backup_destination, git_ls_remote, psutil_listeners
from tests.support.git import example_repo, git
from tests.support.hosts import FolderHost
from tests.support.net import free_port


class World:
    def __init__(self, tmp: Path) -> None:
        self.repo = example_repo(tmp / "ops")
        self.host = FolderHost(tmp / "root")
        self.host.converge(self.repo, "development")
        store = self.host.store
        store.set_target(
            {"repo": str(self.repo), "ref": "main", "path": ".", "environment": "development"}
        )
        sha = git(self.repo, "rev-parse", "HEAD")
        from reconciler.model import Revision

        rev = Revision(sha, "main", str(self.repo), "initial")
        store.set_desired(rev)
        run = store.begin_revision("development", rev, "manual")
        from reconciler.outcomes import RevisionOutcome

        store.finish_revision(run, RevisionOutcome.APPLIED, "", 3)
        # ports of this test's own (other engineers' demos may hold the example's)
        for unit in store.inventory().units.values():
            if unit.probe:
                store.record_unit(replace(unit, probe=f"http://127.0.0.1:{free_port()}/healthz"))
        api = store.inventory().units["atlas-api.service"]
        self.port = int(api.probe.rsplit(":", 1)[1].split("/")[0])
        layout = self.host.layout
        self.db = layout.on_disk(json.loads(self.config("core"))["database"]["path"])
        self.db.parent.mkdir(parents=True, exist_ok=True)
        open_store(self.db, 5).close()
        self.backups = backup_destination(layout)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen()
        self.ours = frozenset({os.getpid()})
        self.synchronised: bool | None = True
        if self.backups is not None:
            self.backups.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(time.time() - 600))
            (self.backups / f"atlas-{stamp}.000000Z.db").write_bytes(self.db.read_bytes())

    def config(self, name: str) -> str:
        layout = self.host.layout
        return (layout.on_disk(layout.config_dir) / f"{name}.json").read_text()

    def diagnose(self) -> dict[str, checks.Finding]:
        runtime = self.host.runtime
        probes = Probes(
            manager=checks.ManagerFacts("user", "running", "257"),
            runtime=runtime,
            clock_synchronised=lambda: self.synchronised,
            listeners=psutil_listeners,
            # the in-memory units' processes are this test's: it holds their port
            process_tree=lambda pid: self.ours if pid else frozenset(),
            ls_remote=git_ls_remote,
        )
        key = self.host.store.path.with_name("host.key")
        dest = self.backups
        found = checks.BackupFacts(
            str(dest) if dest else None, newest_backup(dest) if dest else None
        )
        result = diagnose(
            self.host.layout,
            self.host.store,
            probes,
            key_files=[(key, True)],
            backups=found,
            now=time.time(),
        )
        return {f.check: f for f in result.findings}


@pytest.fixture
def world(tmp_path: Path):
    w = World(tmp_path)
    yield w
    w.listener.close()


def test_a_converged_host_passes_every_check(world: World) -> None:
    found = world.diagnose()
    assert {k: f.verdict for k, f in found.items() if f.verdict != "ok"} == {}
    assert "integrity ok" in found["database"].message
    assert "main is " in found["repository"].message


def test_a_hand_edited_unit_file_and_a_stray_one(world: World) -> None:
    layout = world.host.layout
    unit_dir = layout.on_disk(layout.unit_dir)
    core = unit_dir / "atlas-core.service"
    core.write_text(core.read_text() + "\n# edited\n")
    (unit_dir / "atlas-old.service").write_text("[Service]\nExecStart=/bin/true\n")
    f = world.diagnose()["inventory"]
    assert f.verdict == "problem" and "atlas reconcile --once" in f.fix
    assert any("atlas-core.service" in d for d in f.details)
    assert any(d.endswith("atlas-old.service") for d in f.details)


def test_a_failed_unit_shows_its_last_journal_lines(world: World) -> None:
    rt = world.host.runtime
    rt.units["atlas-api.service"] = replace(
        rt.units["atlas-api.service"], active_state="failed", sub_state="failed", main_pid=0
    )
    rt.journals["atlas-api.service"] = ["starting", "sqlite3.OperationalError: disk I/O error"]
    f = world.diagnose()["units"]
    assert f.verdict == "problem" and "atlas-api.service" in f.message
    assert "  sqlite3.OperationalError: disk I/O error" in f.details


def test_an_unsafe_host_key(world: World) -> None:
    world.host.store.path.with_name("host.key").chmod(0o644)
    f = world.diagnose()["keys"]
    assert f.verdict == "problem" and f.fix.startswith("chmod 600 ")


def test_an_unreachable_repository_and_an_unknown_ref(world: World) -> None:
    world.host.store.set_target({**world.host.store.target(), "ref": "no-such-branch"})
    assert "no branch or tag 'no-such-branch'" in world.diagnose()["repository"].message
    world.repo.rename(world.repo.with_name("moved"))
    assert "unreachable" in world.diagnose()["repository"].message


def test_a_corrupt_content_database(world: World) -> None:
    data = bytearray(world.db.read_bytes())
    data[200:4096] = b"\xff" * (4096 - 200)  # the schema page, past the header
    world.db.write_bytes(bytes(data))
    f = world.diagnose()["database"]
    assert f.verdict == "problem" and "restore" in f.fix


def test_a_port_held_by_another_process(world: World) -> None:
    world.ours = frozenset({1})  # the unit's process is not the one listening
    f = world.diagnose()["ports"]
    assert f.verdict == "problem"
    assert f"port {world.port} of atlas-api.service is held by" in f.details[0]


def test_an_unsynchronised_clock_and_stale_backups(world: World) -> None:
    world.synchronised = False
    if world.backups is None:
        pytest.skip("the development environment has no BackupPolicy")
    for old in world.backups.iterdir():
        old.unlink()
    found = world.diagnose()
    assert found["clock"].verdict == "problem"
    assert found["backups"].verdict == "problem" and "no backup" in found["backups"].message


def test_a_reconciler_that_stopped_syncing(world: World) -> None:
    world.host.store.set_fetch_error("cannot fetch /srv/ops.git: gone")
    f = world.diagnose()["reconciler"]
    assert f.verdict == "problem" and "OutOfSync" in f.message


def test_the_command_exits_1_and_prints_json(tmp_path: Path, capsys) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    code = main(["doctor", "--scope", "user", "--root", str(root), "-o", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1
    verdicts = {f["check"]: f["verdict"] for f in doc["findings"]}
    assert verdicts["reconciler"] == "problem" and verdicts["manager"] == "unknown"
    assert doc["problems"] == 1


def test_the_command_on_a_converged_root_prints_one_line_per_check(world: World, capsys) -> None:
    env = {"HOME": "/home/atlas"}
    old = {k: os.environ.get(k) for k in ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME")}
    try:
        os.environ.update(env)
        for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME"):
            os.environ.pop(k, None)
        main(["doctor", "--scope", "user", "--root", str(world.host.root)])
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out = capsys.readouterr().out
    assert "ok       database    content database" in out
    assert "unknown  manager" in out
    assert "Traceback" not in out


def test_an_unreadable_state_database_is_a_finding_not_a_crash(tmp_path: Path, capsys) -> None:
    state = tmp_path / "root/home/atlas/.local/state/atlas/reconciler/state.db"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"not a database at all\n" * 100)
    before = state.read_bytes()
    env = {"HOME": "/home/atlas"}
    saved = {k: os.environ.pop(k, None) for k in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "HOME")}
    os.environ.update(env)
    try:
        code = main(["doctor", "--scope", "user", "--root", str(tmp_path / "root"), "-o", "json"])
    finally:
        os.environ.pop("HOME")
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    doc = json.loads(capsys.readouterr().out)
    found = {f["check"]: f for f in doc["findings"]}
    assert code == 1
    assert "the state database cannot be read" in found["reconciler"]["message"]
    assert found["reconciler"]["fix"]
    assert state.read_bytes() == before  # doctor only reads
