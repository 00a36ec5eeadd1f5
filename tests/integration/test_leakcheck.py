"""The leak checker itself: it must find a planted value in every place and form it
searches, or its silence elsewhere proves nothing."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from tests.support.git import GitRepo
from tests.support.leakcheck import LeakCheck, scan

SECRET = 'pl4nted-"value"\\with/odd chars é'


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        json.dumps(SECRET),
        json.dumps(SECRET, ensure_ascii=False),
        repr(SECRET),
        '"' + SECRET.replace("\\", "\\\\").replace('"', '\\"') + '"',
        urllib.parse.quote(SECRET, safe=""),
        base64.b64encode(SECRET.encode()).decode(),
        SECRET.encode().hex().upper(),
    ],
)
def test_every_encoding_is_found(form: str) -> None:
    assert scan(f"prefix {form} suffix", {"planted": SECRET}), form


def test_utf16_and_lines_of_a_long_value_are_found() -> None:
    assert scan(b"xx" + SECRET.encode("utf-16-le"), {"planted": SECRET})
    pem = "-----BEGIN KEY-----\nMIIBVwIBADANBgkqhkiG9w0BAQEF\n-----END KEY-----"
    assert [f.encoding for f in scan("MIIBVwIBADANBgkqhkiG9w0BAQEF", {"pem": pem})] == ["line 2"]


def test_clean_data_passes_and_findings_fail() -> None:
    leaks = LeakCheck({"planted": SECRET})
    leaks.text("clean", "nothing to see")
    leaks.assert_clean()
    leaks.text("dirty", f"oops {SECRET}")
    with pytest.raises(AssertionError, match="dirty: secret 'planted' \\(plain\\)"):
        leaks.assert_clean()


def test_short_or_missing_secrets_are_refused() -> None:
    with pytest.raises(ValueError, match="shorter"):
        LeakCheck({"x": "abc"})
    with pytest.raises(ValueError, match="could never fail"):
        LeakCheck({})
    with pytest.raises(AssertionError, match="nothing was searched"):
        LeakCheck({"planted": SECRET}).assert_clean()


def test_trees_honour_allow_and_refuse_to_be_empty(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "ok.env").write_text(SECRET)
    (tmp_path / "a" / "unit.service").write_text("Environment=X=" + SECRET)
    leaks = LeakCheck({"planted": SECRET})
    found = leaks.tree(tmp_path, allow=[tmp_path / "a" / "ok.env"])
    assert [Path(f.where).name for f in found] == ["unit.service"]
    with pytest.raises(AssertionError, match="no files"):
        leaks.tree(tmp_path / "a", allow=list((tmp_path / "a").iterdir()))


def test_sqlite_cells_are_searched(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE events (message TEXT, blob BLOB)")
    con.execute("INSERT INTO events VALUES (?, ?)", ("fine", SECRET.encode("utf-16-le")))
    con.commit()
    con.close()
    assert any("table events" in f.where for f in LeakCheck({"planted": SECRET}).sqlite(db))


def test_git_history_is_searched_even_where_nothing_refers_to_it(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    leaks = LeakCheck({"planted": SECRET})
    assert not leaks.git(repo.path)
    # a value committed and then "removed" by amending stays in the object database
    (repo.path / "oops.txt").write_text(SECRET)
    repo.commit("oops")
    (repo.path / "oops.txt").unlink()
    repo.git("commit", "-q", "--amend", "--allow-empty", "-a", "-m", "nothing happened")
    repo.git("reflog", "expire", "--expire=now", "--all")
    repo.git("gc", "-q", "--prune=never")  # packed and compressed, unreachable
    assert "oops" not in repo.git("log", "--all", "--stat")
    found = LeakCheck({"planted": SECRET}).git(repo.path)
    assert any("every git object" in f.where for f in found)


def test_git_messages_and_refs_are_searched(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    subprocess.run(
        ["git", "-C", str(repo.path), "commit", "-q", "--allow-empty", "-m", f"pw {SECRET}"],
        check=True,
    )
    assert LeakCheck({"planted": SECRET}).git(repo.path)
