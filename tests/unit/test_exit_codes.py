"""Exit codes CI can trust: 2 means "a dry run found changes", never a usage error."""

from __future__ import annotations

import pytest

from atlas.cli import main
from atlas.commands.args import EXIT_CHANGES, EXIT_ERROR


@pytest.mark.parametrize(
    "argv",
    [
        ["--no-such-flag"],
        ["no-such-command"],
        ["reconcile", "--once", "--no-such-flag"],
        ["reconcile", "--dry-run", "--scope", "galaxy"],
        ["validate", "--output", "yaml-please"],
        ["secrets", "get"],
        [],
    ],
    ids=lambda a: " ".join(a) or "nothing",
)
def test_usage_errors_exit_1(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert EXIT_CHANGES == 2
    assert main(argv) == EXIT_ERROR
    assert "usage: atlas" in capsys.readouterr().err


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert main(["--version"]) == 0
    assert "atlas " in capsys.readouterr().out
