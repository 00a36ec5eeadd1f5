"""A damaged state database: `atlas status` and `atlas history` say which file and what
to do (exit 1), never a traceback, and leave the file as it was."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reconciler.host.paths import host_layout
from reconciler.model import Revision
from reconciler.state import StateStore, state_path


def _state(root: Path) -> Path:
    layout = host_layout("user", root, dict(os.environ))
    return state_path(layout.on_disk(layout.reconciler_dir))


def _recorded(root: Path) -> Path:
    """A real state database with a target, a revision and enough events for many pages."""
    path = _state(root)
    store = StateStore(path)
    store.set_target({"repo": "/nowhere", "ref": None, "path": ".", "environment": "development"})
    rev = store.begin_revision("development", Revision("a" * 40, "main", "/nowhere"), "test")
    store.finish_revision(rev, "applied", "all good")  # type: ignore[arg-type]
    for i in range(400):
        store.event("info", "applied", f"event {i} " + "x" * 200)
    store.close()
    return path


def _damage_interior_pages(path: Path) -> None:
    """Overwrite every page but the first (the schema) and the last with garbage."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    assert len(data) > 4 * page, "the database should span several pages"
    for start in range(page, len(data) - page, page):
        data[start : start + page] = b"\xa5" * page
    path.write_bytes(bytes(data))


def _assert_clear(result, path: Path, before: bytes, *phrases: str) -> None:  # type: ignore[no-untyped-def]
    assert result.code == 1, result.output
    assert "Traceback" not in result.output
    assert str(path) in result.err, result.err
    for phrase in phrases:
        assert phrase in result.err, result.err
    assert path.read_bytes() == before, "the damaged file must be left as it was"


@pytest.mark.parametrize("command", ["status", "history"])
def test_corrupted_interior_pages_are_a_clear_error(atlas, tmp_path: Path, command: str) -> None:
    root = tmp_path / "root"
    path = _recorded(root)
    _damage_interior_pages(path)
    before = path.read_bytes()
    result = atlas(command, "--scope", "user", "--root", root)
    _assert_clear(result, path, before, "is damaged", "move it aside")


@pytest.mark.parametrize("command", ["status", "history"])
def test_an_empty_state_file_is_a_clear_error(atlas, tmp_path: Path, command: str) -> None:
    root = tmp_path / "root"
    path = _state(root)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    result = atlas(command, "--scope", "user", "--root", root)
    _assert_clear(result, path, b"", "empty (0 bytes)", "move it aside")
    assert "Environment: None" not in result.out


def test_a_file_that_is_not_a_database_is_a_clear_error(atlas, tmp_path: Path) -> None:
    root = tmp_path / "root"
    path = _state(root)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"environment: production\n" * 100)
    before = path.read_bytes()
    result = atlas("history", "--scope", "user", "--root", root)
    _assert_clear(result, path, before, "not an SQLite database")


def test_bad_json_in_the_state_is_a_clear_error(atlas, tmp_path: Path) -> None:
    root = tmp_path / "root"
    path = _recorded(root)
    store = StateStore(path)
    store.db.execute("UPDATE meta SET value = '{\"environment\": ' WHERE key = 'target'")
    store.close()
    before = path.read_bytes()
    result = atlas("status", "--scope", "user", "--root", root)
    _assert_clear(result, path, before, "the stored 'target' is not valid JSON")


def test_an_unknown_outcome_in_the_history_is_a_clear_error(atlas, tmp_path: Path) -> None:
    root = tmp_path / "root"
    path = _recorded(root)
    store = StateStore(path)
    store.db.execute("UPDATE revisions SET outcome = 'exploded'")
    store.close()
    before = path.read_bytes()
    result = atlas("history", "--scope", "user", "--root", root)
    _assert_clear(result, path, before, "a revision record is not valid")
