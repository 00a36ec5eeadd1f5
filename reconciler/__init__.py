"""Atlas reconciler: the control plane that turns a git repository of manifests
into running systemd services.

This module is its public face: ``__all__`` is what the ``atlas`` command line may
use (an import-linter contract keeps ``atlas.commands`` to it, and a test locks the
list). Names load on first use, so ``import reconciler`` costs nothing.

Inside, the layers (higher may import lower, never the reverse; another contract):

    compose                      the composition root: real seams for a host
    watch/                       the --watch daemon: HTTP endpoint, refs watcher
    loop                         one cycle; rollbacks
    review | record | diagnose   pull-request plans | history, events and metrics | doctor
    pipeline | status            the one planning path | the sync status rule
    apply verify plan drift …    the stages, then observe | state, then inventory | actions
    render/                      desired state → files and units (pure)
    secrets/ | model             values and keys | the desired state
    manifests/                   YAML → validated manifests of one environment
    host/ | metrics              the host's seams | the Prometheus registry
    errors quantities outcomes   leaves

It never imports the ``atlas`` platform. See DESIGN.md §2.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.actions import Action, Plan
    from reconciler.compose import (
        Access,
        TargetArgs,
        doctor,
        dry_run,
        pull_request,
        reconcile_once,
        rollback,
        run_daemon,
        status_report,
    )
    from reconciler.diagnose.doctor import Diagnosis
    from reconciler.errors import (
        ManifestError,
        Problem,
        ReconcilerError,
        SecretsError,
        UsageError,
    )
    from reconciler.host.paths import HostLayout, Scope, host_layout
    from reconciler.manifests.assemble import all_problems, all_warnings, validate_repository
    from reconciler.manifests.load import load_repository
    from reconciler.manifests.migrate import FileMigration, migrate_paths
    from reconciler.manifests.migrate import write as write_migrations
    from reconciler.outcomes import Outcome, SyncStatus
    from reconciler.planfmt import as_dict as plan_dict
    from reconciler.planfmt import as_json as plan_json
    from reconciler.planfmt import as_markdown as plan_markdown
    from reconciler.planfmt import as_text as plan_text
    from reconciler.quantities import parse_duration
    from reconciler.record import CycleResult
    from reconciler.review import Review
    from reconciler.secrets import manage as manage_secrets
    from reconciler.status import StatusReport
    from reconciler.watch.daemon import DaemonSettings

# name → (module, attribute in it; None: the module itself)
_FACE: dict[str, tuple[str, str | None]] = {
    # running the reconciler on this host
    "Access": ("reconciler.compose", "Access"),
    "TargetArgs": ("reconciler.compose", "TargetArgs"),
    "reconcile_once": ("reconciler.compose", "reconcile_once"),
    "run_daemon": ("reconciler.compose", "run_daemon"),
    "rollback": ("reconciler.compose", "rollback"),
    "dry_run": ("reconciler.compose", "dry_run"),
    "status_report": ("reconciler.compose", "status_report"),
    "pull_request": ("reconciler.compose", "pull_request"),
    "doctor": ("reconciler.compose", "doctor"),
    "DaemonSettings": ("reconciler.watch.daemon", "DaemonSettings"),
    # what they return
    "Action": ("reconciler.actions", "Action"),
    "CycleResult": ("reconciler.record", "CycleResult"),
    "Diagnosis": ("reconciler.diagnose.doctor", "Diagnosis"),
    "Outcome": ("reconciler.outcomes", "Outcome"),
    "Plan": ("reconciler.actions", "Plan"),
    "Review": ("reconciler.review", "Review"),
    "StatusReport": ("reconciler.status", "StatusReport"),
    "SyncStatus": ("reconciler.outcomes", "SyncStatus"),
    "plan_dict": ("reconciler.planfmt", "as_dict"),
    "plan_json": ("reconciler.planfmt", "as_json"),
    "plan_markdown": ("reconciler.planfmt", "as_markdown"),
    "plan_text": ("reconciler.planfmt", "as_text"),
    # manifests, without a host
    "load_repository": ("reconciler.manifests.load", "load_repository"),
    "validate_repository": ("reconciler.manifests.assemble", "validate_repository"),
    "all_problems": ("reconciler.manifests.assemble", "all_problems"),
    "all_warnings": ("reconciler.manifests.assemble", "all_warnings"),
    "FileMigration": ("reconciler.manifests.migrate", "FileMigration"),
    "migrate_paths": ("reconciler.manifests.migrate", "migrate_paths"),
    "write_migrations": ("reconciler.manifests.migrate", "write"),
    "manage_secrets": ("reconciler.secrets.manage", None),
    # where things are, and the words of the command line
    "HostLayout": ("reconciler.host.paths", "HostLayout"),
    "Scope": ("reconciler.host.paths", "Scope"),
    "host_layout": ("reconciler.host.paths", "host_layout"),
    "parse_duration": ("reconciler.quantities", "parse_duration"),
    # errors
    "ReconcilerError": ("reconciler.errors", "ReconcilerError"),
    "ManifestError": ("reconciler.errors", "ManifestError"),
    "SecretsError": ("reconciler.errors", "SecretsError"),
    "UsageError": ("reconciler.errors", "UsageError"),
    "Problem": ("reconciler.errors", "Problem"),
}

__all__ = [
    "Access",
    "Action",
    "CycleResult",
    "DaemonSettings",
    "Diagnosis",
    "FileMigration",
    "HostLayout",
    "ManifestError",
    "Outcome",
    "Plan",
    "Problem",
    "ReconcilerError",
    "Review",
    "Scope",
    "SecretsError",
    "StatusReport",
    "SyncStatus",
    "TargetArgs",
    "UsageError",
    "all_problems",
    "all_warnings",
    "doctor",
    "dry_run",
    "host_layout",
    "load_repository",
    "manage_secrets",
    "migrate_paths",
    "parse_duration",
    "plan_dict",
    "plan_json",
    "plan_markdown",
    "plan_text",
    "pull_request",
    "reconcile_once",
    "rollback",
    "run_daemon",
    "status_report",
    "validate_repository",
    "write_migrations",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _FACE[name]
    except KeyError:
        raise AttributeError(f"module 'reconciler' has no attribute {name!r}") from None
    loaded = importlib.import_module(module)
    value = loaded if attribute is None else getattr(loaded, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
