from pathlib import Path

from atlas.cli import main
from tests.support.examples import EXAMPLE


def dry_run(repo: Path, ref: str | None, root: Path) -> int:
    """``atlas reconcile --dry-run`` of the development environment against ``root``."""
    where = ["--ref", ref] if ref else []
    return main(
        ["reconcile", "--dry-run", "--repo", str(repo), *where, "--env", "development",
         "--scope", "user", "--root", str(root)]
    )  # fmt: skip


def test_example_manifests_are_valid(capsys) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    assert "valid: development" in capsys.readouterr().out


def test_dry_run_of_development_against_empty_root(tmp_path: Path, capsys) -> None:
    code = dry_run(EXAMPLE, None, tmp_path)
    assert code == 2
    out = capsys.readouterr().out
    assert "start         atlas-api.service" in out
    assert list(tmp_path.iterdir()) == [], "a dry run must not write to the root"


def test_dry_run_of_a_git_repository_leaves_no_trace(
    tmp_path: Path, ops_repo: Path, capsys
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    code = dry_run(ops_repo, "main", root)
    assert code == 2
    assert list(root.iterdir()) == [], "no git cache, no state database"


def test_dry_run_does_not_change_the_state_database(
    tmp_path: Path, ops_repo: Path, capsys, monkeypatch
) -> None:
    from tests.support.hosts import FolderHost

    monkeypatch.setenv("HOME", "/home/atlas")  # the layout FolderHost uses
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)

    host = FolderHost(tmp_path / "root")
    host.converge(ops_repo, "development")
    host.store.close()
    state = {
        p: p.read_bytes()
        for p in (tmp_path / "root").rglob("*")
        if p.is_file() and "reconciler" in p.parts
    }
    code = dry_run(ops_repo, "main", tmp_path / "root")
    assert code == 2, capsys.readouterr()
    after = {
        p: p.read_bytes()
        for p in (tmp_path / "root").rglob("*")
        if p.is_file() and "reconciler" in p.parts
    }
    assert after == state
