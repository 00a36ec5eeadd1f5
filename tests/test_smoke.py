from pathlib import Path

from atlas.cli import main
from tests.conftest import EXAMPLE


def test_example_manifests_are_valid(capsys) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    assert "valid: development" in capsys.readouterr().out


def test_dry_run_of_development_against_empty_root(tmp_path: Path, capsys) -> None:
    code = main(
        [
            "reconcile",
            "--dry-run",
            "--repo",
            str(EXAMPLE),
            "--env",
            "development",
            "--scope",
            "user",
            "--root",
            str(tmp_path),
        ]
    )
    assert code == 2
    out = capsys.readouterr().out
    assert "start         atlas-api.service" in out
    assert list(tmp_path.iterdir()) == [], "a dry run must not write to the root"
