"""The composition root: the reconciler wired to a real host, as a command asks for it.

A command says how it reaches the host (``Access``: scope, ``--root``, the process
environment, ``--key-file``) and what to converge to (``TargetArgs``); this module
builds the real seams — ``systemctl``, httpx probes, the system clock, the state
database, key files — and hands them to the loop, the planner or the status
report. ``atlas`` commands call these functions and print what they return; tests
call them too (with ``on_action`` to kill a run between two actions), so what a
test drives is what a command runs.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

from reconciler import pipeline, review, status
from reconciler.actions import Action, Plan
from reconciler.diagnose import checks as doctor_checks
from reconciler.diagnose import gather as doctor_gather
from reconciler.diagnose.doctor import Diagnosis, diagnose
from reconciler.errors import ReconcilerError, UsageError
from reconciler.host.paths import HostLayout, Scope, host_layout
from reconciler.host.probe import HttpxProbe
from reconciler.host.releases import PipInstaller
from reconciler.host.runtime import Systemctl
from reconciler.inventory import Inventory
from reconciler.loop import Host, Options, Reconciler
from reconciler.metrics import ReconcilerMetrics
from reconciler.model import ReconcilerInvocation
from reconciler.record import CycleResult, Log
from reconciler.render.desired import HostFacts, RenderContext
from reconciler.secrets.keys import find_key_file
from reconciler.secrets.sources import SecretsSource, key_file_secrets
from reconciler.state import StateStore, state_path
from reconciler.verify import Waiting
from reconciler.watch.daemon import Daemon, DaemonSettings
from seams.clock import SystemClock
from seams.notify import Notifier


def _quiet(level: str, message: str) -> None:
    return None


@dataclass(frozen=True)
class Access:
    """How a command reaches this host."""

    scope: Scope
    root: Path
    environ: Mapping[str, str]
    key_file: Path | None = None

    @cached_property
    def layout(self) -> HostLayout:
        return host_layout(self.scope, self.root, self.environ)

    @property
    def facts(self) -> HostFacts:
        return HostFacts.current(self.environ.get("ATLAS_PYTHON"))

    @property
    def state_path(self) -> Path:
        return state_path(self.layout.on_disk(self.layout.reconciler_dir))

    def secrets_for(self, env: str) -> SecretsSource | None:
        return key_file_secrets(
            env,
            self.key_file,
            self.environ.get("ATLAS_SECRETS_KEY_FILE"),
            self.layout.on_disk(self.layout.config_dir),
        )

    def runtime(self) -> Systemctl:
        return Systemctl(self.scope, self.environ)

    def store(self, must_exist: bool = False) -> StateStore:
        if must_exist and not self.state_path.exists():
            raise UsageError(
                f"no reconciler state at {self.state_path}: nothing was reconciled on this "
                f"host (scope {self.scope}) yet"
            )
        return StateStore(self.state_path)

    def host(self, log: Log = _quiet) -> Host:
        facts = self.facts
        releases = PipInstaller(
            self.layout.on_disk(self.layout.releases_dir),
            facts.python,
            lambda message: log("info", message),
        )
        return Host(self.layout, self.runtime(), HttpxProbe(), SystemClock(), facts, releases)


@dataclass(frozen=True)
class TargetArgs:
    """What a command line says to converge to; the gaps come from the last reconcile."""

    repo: str | None = None
    ref: str | None = None
    path: str | None = None
    environment: str | None = None

    def resolve(self, last: Mapping[str, str | None]) -> pipeline.Target:
        env = self.environment or last.get("environment")
        if not env:
            raise UsageError(
                "--env is required (no earlier reconcile on this host to take it from)"
            )
        repo = self.repo or last.get("repo") or "."
        ref = self.ref if self.ref is not None else (last.get("ref") if not self.repo else None)
        path = self.path or last.get("path") or "."
        return pipeline.Target(repo, ref, path, env)


def remember(store: StateStore, target: pipeline.Target) -> None:
    """Later commands (status, rollback, a bare ``reconcile``) default to this target."""
    store.set_target(
        {
            "repo": target.invocation.repo,
            "ref": target.ref,
            "path": target.path,
            "environment": target.environment,
        }
    )


def reconciler(
    access: Access,
    store: StateStore,
    target: pipeline.Target,
    *,
    log: Log = _quiet,
    options: Options | None = None,
) -> Reconciler:
    """A reconciler of ``target`` on this host; ``options.self_unit`` comes from the
    environment (``ATLAS_UNIT``, set by atlas-reconciler.service)."""
    options = replace(options or Options(), self_unit=access.environ.get("ATLAS_UNIT") or None)
    return Reconciler(
        target,
        access.host(log),
        store,
        access.secrets_for,
        metrics=ReconcilerMetrics(),
        log=log,
        options=options,
    )


def reconcile_once(
    access: Access,
    args: TargetArgs,
    *,
    self_heal: bool = True,
    lock_wait: float = 0.0,
    log: Log = _quiet,
    on_action: Callable[[Action], None] | None = None,
    on_wait: Waiting | None = None,
) -> CycleResult:
    """``atlas reconcile --once``."""
    store = access.store()
    target = args.resolve(store.target())
    remember(store, target)
    options = Options(
        self_heal=self_heal, lock_wait=lock_wait, on_action=on_action, on_wait=on_wait
    )
    rec = reconciler(access, store, target, log=log, options=options)
    return rec.cycle("manual")


def run_daemon(
    access: Access,
    args: TargetArgs,
    settings: DaemonSettings,
    *,
    self_heal: bool = True,
    lock_wait: float = 300.0,
    log: Log = _quiet,
) -> None:
    """``atlas reconcile --watch``: until SIGTERM."""
    store = access.store()
    target = args.resolve(store.target())
    remember(store, target)
    options = Options(self_heal=self_heal, lock_wait=lock_wait)
    rec = reconciler(access, store, target, log=log, options=options)
    Daemon(rec, settings, Notifier.from_environ(access.environ), log).run()


def rollback(
    access: Access, args: TargetArgs, to_sha: str | None, *, lock_wait: float, log: Log = _quiet
) -> CycleResult:
    """``atlas rollback``."""
    store = access.store(must_exist=True)
    target = args.resolve(store.target())
    options = Options(lock_wait=lock_wait)
    return reconciler(access, store, target, log=log, options=options).rollback(to_sha)


def _reachable(access: Access) -> Systemctl | None:
    """The service manager, when this host has one to ask (not for another --root)."""
    if str(access.root) != "/":
        return None
    runtime = access.runtime()
    try:
        runtime.system_state()
    except ReconcilerError:
        return None  # no manager to ask: unit states unknown
    return runtime


def dry_run(access: Access, args: TargetArgs) -> Plan:
    """``atlas reconcile --dry-run``: the plan apply would run now; nothing is written
    (a host that was never reconciled keeps no trace of it either)."""
    store = StateStore.existing(access.state_path)
    inventory, pending = Inventory(), []
    try:  # read what the plan needs and let go of the database at once
        target = args.resolve(store.target() if store is not None else {})
        if store is not None:
            inventory, pending = store.inventory(), store.journal_pending()
    finally:
        if store is not None:
            store.close()
    with ExitStack() as stack:
        cache = access.layout.on_disk(access.layout.reconciler_dir) / "git"
        if not cache.is_dir():
            cache = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="atlas-dry-")))
        host = pipeline.LiveHost(access.layout, _reachable(access), inventory, pending)
        ctx = RenderContext(access.layout, access.facts, target.invocation)
        secrets = access.secrets_for(target.environment)
        return pipeline.dry_run(target, ctx, secrets, host, cache).plan


def status_report(access: Access, env: str | None) -> status.StatusReport:
    """``atlas status``."""
    store = access.store(must_exist=True)
    return status.report(access.layout, store, env, access.runtime(), HttpxProbe())


def pull_request(
    access: Access, repo: str, base: str, head: str, path: str, envs: Sequence[str] | None
) -> review.Review:
    """``atlas plan --base --head``."""
    explicit = access.key_file is not None or bool(access.environ.get("ATLAS_SECRETS_KEY_FILE"))
    planned: list[str] = []

    def secrets_for(env: str) -> SecretsSource | None:
        planned.append(env)
        if explicit and len(set(planned)) > 1:
            raise UsageError(
                "a key file belongs to one environment: plan that one with --env, or rely on "
                "each environment's default key file (<config dir>/keys/<env>.key)"
            )
        return access.secrets_for(env)

    ctx = RenderContext(access.layout, access.facts, ReconcilerInvocation(repo, base, path))
    with tempfile.TemporaryDirectory(prefix="atlas-plan-") as tmp:
        change = review.Change(repo, base, head, path)
        return review.review(change, envs, ctx, secrets_for, Path(tmp))


def _manager(access: Access) -> tuple[doctor_checks.ManagerFacts, Systemctl | None]:
    if str(access.root) != "/":
        facts = doctor_checks.ManagerFacts(
            access.scope, None, error=f"--root {access.root} is not this host", asked=False
        )
        return facts, None
    runtime = access.runtime()
    try:
        state = runtime.system_state()
        version = runtime.manager_version()
    except ReconcilerError as exc:
        return doctor_checks.ManagerFacts(access.scope, None, error=str(exc)), None
    return doctor_checks.ManagerFacts(access.scope, state, version), runtime


def _state_for_doctor(path: Path) -> tuple[StateStore | None, str]:
    """The state database read-only, or (None, why it cannot be read)."""
    store: StateStore | None = None
    try:
        store = StateStore.existing(path)
        if store is not None:
            store.target()
        return store, ""
    except (ReconcilerError, sqlite3.Error) as exc:
        if store is not None:
            store.close()
        return None, f"{path}: {exc}"


def doctor(
    access: Access,
    newest_backup: Callable[[Path], float | None],
    *,
    backup_max_age_s: float = 26 * 3600.0,
) -> Diagnosis:
    """``atlas doctor``; ``newest_backup(folder)`` is when the newest finished backup
    there was taken (the platform knows its backups' names)."""
    manager, runtime = _manager(access)
    probes = doctor_gather.Probes(
        manager=manager,
        runtime=runtime,
        clock_synchronised=doctor_gather.timedatectl_synchronised,
        listeners=doctor_gather.psutil_listeners,
        process_tree=doctor_gather.psutil_tree,
        ls_remote=doctor_gather.git_ls_remote,
    )
    store, unreadable = _state_for_doctor(access.state_path)
    try:
        env = store.target().get("environment") if store is not None else None
        keys = [(access.state_path.with_name("host.key"), store is not None)]
        if env:
            path, explicit = find_key_file(
                env,
                access.key_file,
                access.environ.get("ATLAS_SECRETS_KEY_FILE"),
                access.layout.on_disk(access.layout.config_dir),
            )
            keys.append((path, explicit))
        destination = doctor_gather.backup_destination(access.layout)
        backups = doctor_checks.BackupFacts(
            str(destination) if destination else None,
            newest_backup(destination) if destination else None,
            backup_max_age_s,
        )
        return diagnose(
            access.layout,
            store,
            probes,
            key_files=keys,
            backups=backups,
            now=SystemClock().wall(),
            unreadable=unreadable,
        )
    finally:
        if store is not None:
            store.close()
