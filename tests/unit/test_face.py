"""The reconciler's public face: what the command line may use, locked here.

Changing it is a decision (the import contract keeps atlas/commands to it), so the
list is written out; a name added to or dropped from ``reconciler.__all__`` fails
this test until it is updated on purpose.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import reconciler

FACE = [
    "Access", "Action", "CycleResult", "DaemonSettings", "Diagnosis", "FileMigration", "HostLayout",
    "ManifestError", "Outcome", "Plan", "Problem", "ReconcilerError", "Review", "Scope",
    "SecretsError", "StatusReport", "SyncStatus", "TargetArgs", "UsageError", "all_problems",
    "all_warnings",
    "doctor", "dry_run", "host_layout", "load_repository", "manage_secrets", "migrate_paths",
    "parse_duration", "plan_dict", "plan_json", "plan_markdown", "plan_text", "pull_request",
    "reconcile_once", "rollback", "run_daemon", "status_report", "validate_repository",
    "write_migrations",
]  # fmt: skip


def test_the_face_is_locked() -> None:
    assert reconciler.__all__ == FACE


@pytest.mark.parametrize("name", FACE)
def test_every_name_resolves(name: str) -> None:
    assert getattr(reconciler, name) is not None


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = reconciler.nope  # type: ignore[attr-defined]


def test_importing_the_face_loads_nothing_else() -> None:
    """``atlas --help`` imports the face; the stages load when a command needs them."""
    code = (
        "import sys, reconciler; "
        "print(sorted(m for m in sys.modules if m.startswith('reconciler') "
        "or m in ('yaml', 'jinja2', 'git', 'jsonschema')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "['reconciler']"
