"""The platform's command line: bad configs fail clearly, and the DLQ verbs."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atlas.cli import main
from atlas.core import settings as core_settings
from atlas.core.store import open_store
from atlas.core.worker import Worker
from tests.support.feeds import (
    FeedServer,
    Reply,
    api_config,
    core_config,
    entries,
    envelope,
    rss20,
    source,
    write_json,
)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------- bad configs


def _core(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    cfg = core_config(tmp_path / "data" / "atlas.db", [source("a", url="http://x.invalid/f")])
    cfg.update(changes)
    return cfg


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["fetch"].update(timeoutSeconds="fast"), "fetch.timeoutSeconds: 'fast' is not"),
        (lambda c: c["sources"][0].update(url=None), "sources[0].url: a source of type rss needs"),
        (lambda c: c["sources"][0].update(url="ftp://x"), "sources[0].url: expected an http(s)"),
        (lambda c: c["sources"][0].update(type="text"), "sources[0].text: a source of type text"),
        (lambda c: c["sources"].append(dict(c["sources"][0])), "sources[1].name: duplicate"),
        (lambda c: c.pop("replicas"), "'replicas' is a required property"),
        (lambda c: c["sources"][0].update(extra=1), "sources[0]: Additional properties"),
        (lambda c: c.update(configVersion=2), "configVersion: 1 was expected"),
    ],
)
def test_bad_core_config_exits_1_naming_file_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], mutate: Any, expected: str
) -> None:
    cfg = _core(tmp_path)
    mutate(cfg)
    path = write_json(tmp_path / "core.json", cfg)
    code, _, err = run(["core", "--config", str(path)], capsys)
    assert code == 1
    assert f"{path}" in err and expected in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "data").exists(), "nothing is created for a bad config"


def test_unreadable_configs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.json"
    code, _, err = run(["core", "--config", str(missing)], capsys)
    assert code == 1 and f"{missing}: config file does not exist" in err
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "configVersion": 1,\n  oops\n}')
    code, _, err = run(["api", "--config", str(broken)], capsys)
    assert code == 1 and f"{broken}:3: not valid JSON" in err


def test_instance_outside_replicas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_json(tmp_path / "core.json", _core(tmp_path, replicas=2))
    code, _, err = run(["core", "--config", str(path), "--instance", "3"], capsys)
    assert code == 1 and "--instance 3 is outside 1..replicas (2)" in err
    api = api_config(tmp_path / "atlas.db", 8080)
    api["port"] = 0
    path = write_json(tmp_path / "api.json", api)
    code, _, err = run(["api", "--config", str(path)], capsys)
    assert code == 1 and "port: 0 is less than the minimum of 1" in err


def test_bad_services_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = envelope("services", tmp_path / "atlas.db")
    path = write_json(tmp_path / "services.json", cfg)
    code, _, err = run(["services", "run", "--config", str(path)], capsys)
    assert code == 1 and "'backup' is a required property" in err


# ---------------------------------------------------------------- dead letters


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[tuple[FeedServer, Path, Path]]:
    """A database with two dead letters (sources 'bad' and 'worse'), a good source."""
    with FeedServer() as srv:
        srv.routes["/bad"] = Reply(500, b"down")
        srv.routes["/worse"] = Reply(404, b"gone")
        srv.routes["/good"] = Reply(body=rss20(entries("g", 2)))
        db = tmp_path / "atlas.db"
        cfg = core_config(
            db,
            [
                source("bad", url=srv.url("/bad")),
                source("worse", url=srv.url("/worse")),
                source("good", url=srv.url("/good")),
            ],
        )
        path = write_json(tmp_path / "core.json", cfg)
        settings = core_settings.load(path).for_instance(1)
        worker = Worker(settings, open_store(db, 5), rand=lambda: 0.0)
        worker.start()
        worker.run_until_idle(20)
        worker.shutdown()
        worker.store.close()
        yield srv, path, db


def test_dlq_list(failing: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, config, _ = failing
    code, out, _ = run(["dlq", "list", "--config", str(config), "-o", "json"], capsys)
    assert code == 0
    letters = {d["source"]: d for d in json.loads(out)["deadLetters"]}
    assert set(letters) == {"bad", "worse"}
    assert letters["bad"]["error_kind"] == "temporary"
    assert letters["worse"]["error_kind"] == "permanent"
    code, out, _ = run(["dlq", "list", "--config", str(config), "--source", "bad"], capsys)
    assert code == 0 and "bad" in out and "worse" not in out and "HTTP 500" in out


def test_dlq_retry_still_failing_then_resolved(
    failing: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    srv, config, db = failing
    code, out, err = run(["dlq", "retry", "--config", str(config), "--source", "bad"], capsys)
    assert code == 1 and "bad: still failing" in out and "1 source(s) still failing" in err
    srv.routes["/bad"] = Reply(body=rss20(entries("b", 3)))
    code, out, _ = run(["dlq", "retry", "--config", str(config), "--all"], capsys)
    assert code == 1, "'worse' still fails"
    assert "bad: resolved: 3 new, 0 updated" in out
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT source FROM dead_letters").fetchall() == [("worse",)]
    assert conn.execute("SELECT COUNT(*) FROM items WHERE source = 'bad'").fetchone() == (3,)
    assert conn.execute("SELECT consecutive_errors FROM sources WHERE name = 'bad'").fetchone() == (
        0,
    )
    conn.close()


def test_dlq_purge_forgets_letters_not_sources(
    failing: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _, config, db = failing
    code, _, err = run(["dlq", "purge", "--config", str(config)], capsys)
    assert code == 1 and "say which" in err
    code, _, err = run(["dlq", "purge", "--config", str(config), "999"], capsys)
    assert code == 1 and "no dead letter with id 999" in err
    code, out, _ = run(["dlq", "purge", "--config", str(config), "--all", "-o", "json"], capsys)
    assert code == 0 and json.loads(out) == {"purged": 2, "sources": ["bad", "worse"]}
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone() == (0,)
    rows = conn.execute(
        "SELECT name, consecutive_errors, next_check_at > 0 FROM sources ORDER BY name"
    ).fetchall()
    assert rows == [("bad", 1, 1), ("good", 0, 1), ("worse", 1, 1)], "still scheduled"
    conn.close()


def test_dlq_without_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_json(tmp_path / "core.json", _core(tmp_path))
    code, _, err = run(["dlq", "list", "--config", str(path)], capsys)
    assert code == 1 and "does not exist (has atlas-core run yet?)" in err


def test_dlq_finds_config_through_scope_and_root(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    cfg = core_config(Path("/var/lib/atlas/data/atlas.db"), [source("a", "text", text="x")])
    write_json(root / "etc/atlas/core.json", cfg)
    open_store(root / "var/lib/atlas/data/atlas.db", 5).close()
    code, out, _ = run(["dlq", "list", "--scope", "system", "--root", str(root)], capsys)
    assert code == 0 and "the dead-letter queue is empty" in out
