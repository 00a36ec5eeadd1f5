"""Plan: (rendered desired state, observed host, inventory) → an ordered list of actions.

A pure function: no I/O, no clock, no globals. ``atlas reconcile --dry-run`` prints
the plan; ``apply`` executes the very same object.

How unit changes are decided (after NixOS's switch-to-configuration):

* a unit file whose change is cosmetic (comments, Description=, Documentation=) is
  rewritten and left running;
* a change limited to ``X-Reload-Triggers=`` reloads the unit;
* a change limited to ``[Install]`` re-enables it;
* any other change restarts it (``X-Restart-Triggers=`` carries the hash of the
  unit's config and secrets, so a config change restarts exactly its readers);
* a unit no longer desired, and listed in the inventory, is stopped, disabled and
  its files removed. Files and units not in the inventory are never touched.

Releases (``spec.releases``): every version a unit runs that is not installed is
installed first, before anything stops, so a version that cannot be installed fails
the rollout with the running units untouched; releases beyond the ``keep`` newest that
no unit uses (desired, or named by a unit file now on the host) are pruned last.

Order: install releases → stop → disable → remove files → make directories → write config and env
files → write unit files → daemon-reload → reload → restart → start → enable → prune releases, with
starts in component order (core, api, services, monitoring) and stops in reverse.

``carried_over`` adds what a killed run still owed (from its journal): restarts,
reloads and daemon-reloads cannot be re-derived from the host once the files are
in place.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from reconciler.actions import (
    Action,
    DaemonReload,
    Disable,
    Enable,
    FileChange,
    InstallRelease,
    MakeDirectory,
    Plan,
    PruneRelease,
    Reload,
    RemoveFile,
    Restart,
    Start,
    Stop,
    WriteFile,
)
from reconciler.host import unitfile
from reconciler.host.releases import in_use
from reconciler.inventory import Inventory
from reconciler.model import COMPONENTS, Revision
from reconciler.observe import Observed
from reconciler.render.desired import DesiredFile, Rendered, UnitSpec
from reconciler.rollout.steps import describe

_ORDER = {c: i for i, c in enumerate((*COMPONENTS, "reconciler"))}


def _secret_changes(
    desired: Mapping[str, str], known: Mapping[str, str] | None
) -> tuple[tuple[str, str], ...]:
    if known is None:
        return tuple((name, "added") for name in sorted(desired))
    out = []
    for name in sorted(set(desired) | set(known)):
        if name not in known:
            out.append((name, "added"))
        elif name not in desired:
            out.append((name, "removed"))
        elif desired[name] != known[name]:
            out.append((name, "changed"))
    return tuple(out)


def _diff(path: PurePosixPath, old: bytes | None, new: bytes | None) -> str:
    a = (old or b"").decode("utf-8", "replace").splitlines(keepends=True)
    b = (new or b"").decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(
        a,
        b,
        fromfile=str(path) if old is not None else "/dev/null",
        tofile=str(path) if new is not None else "/dev/null",
        n=2,
    )
    return "".join(
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    )


@dataclass
class _Files:
    """What the file pass found: writes, diffs, and how each unit file changed."""

    writes: list[WriteFile] = field(default_factory=list)
    removes: list[RemoveFile] = field(default_factory=list)
    changes: list[FileChange] = field(default_factory=list)
    unit_change: dict[PurePosixPath, str] = field(default_factory=dict)  # new|none|reload|…
    unit_keys: dict[PurePosixPath, list[str]] = field(default_factory=dict)


def _write(f: DesiredFile, observed: Observed, inventory: Inventory) -> WriteFile:
    obs = observed.file(f.path)
    known = inventory.files.get(f.path)
    if not obs.exists:
        reason = "new file" if known is None else "missing on the host (removed by hand?)"
        return WriteFile(reason, f, created=True)
    if obs.content == f.content:
        return WriteFile(f"mode {obs.mode or 0:04o} → {f.mode:04o}", f)
    if known is not None and not f.sensitive and known.sha256 == f.sha256:
        return WriteFile("changed on the host since Atlas wrote it (drift)", f)
    return WriteFile("content changed", f)


def _file_pass(rendered: Rendered, observed: Observed, inventory: Inventory) -> _Files:
    out = _Files()
    for f in rendered.files:
        obs = observed.file(f.path)
        if obs.content == f.content and obs.mode == f.mode:
            continue
        write = _write(f, observed, inventory)
        if f.sensitive:
            known = inventory.files.get(f.path)
            secrets = _secret_changes(f.secret_digests, known.secret_digests if known else None)
            out.changes.append(FileChange(f.path, True, "", secrets))
            if secrets:
                summary = ", ".join(f"secret {n} {what}" for n, what in secrets)
                write = WriteFile(summary, f, write.created)
        elif obs.content != f.content:
            out.changes.append(FileChange(f.path, False, _diff(f.path, obs.content, f.content)))
        out.writes.append(write)
        if f.kind == "unit":
            if not obs.exists:
                out.unit_change[f.path] = "new"
            else:
                old_text = (obs.content or b"").decode("utf-8", "replace")
                new_text = f.content.decode("utf-8", "replace")
                out.unit_change[f.path] = unitfile.classify(old_text, new_text)
                out.unit_keys[f.path] = unitfile.changed_keys(old_text, new_text)
    _removal_pass(rendered, observed, inventory, out)
    return out


def _removal_pass(
    rendered: Rendered, observed: Observed, inventory: Inventory, out: _Files
) -> None:
    desired = {f.path for f in rendered.files}
    for path, entry in sorted(inventory.files.items()):
        if path in desired or not observed.file(path).exists:
            continue
        out.removes.append(
            RemoveFile(f"no longer desired (Atlas created it for {entry.component})", path)
        )
        if entry.kind == "env":
            out.changes.append(
                FileChange(path, True, "", _secret_changes({}, entry.secret_digests))
            )
        else:
            old = observed.file(path).content
            out.changes.append(FileChange(path, False, _diff(path, old, None)))


def _retired_units(
    rendered: Rendered, observed: Observed, inventory: Inventory
) -> tuple[list[Stop], list[Disable]]:
    """Units in the inventory that are no longer desired, stopped in reverse order."""
    desired = {u.name for u in rendered.units}
    stops: list[Stop] = []
    disables: list[Disable] = []
    for name, unit in sorted(
        inventory.units.items(), key=lambda kv: -_ORDER.get(kv[1].component, 99)
    ):
        if name in desired:
            continue
        state = observed.unit(name)
        if state.running or observed.units is None:
            stops.append(Stop("no longer desired", name, unit.component))
        if state.enabled or (observed.units is None and unit.enable):
            disables.append(Disable("no longer desired", name, unit.component))
    return stops, disables


def _desired_unit(
    spec: UnitSpec, observed: Observed, files: _Files, out: dict[str, list[Action]]
) -> None:
    state = observed.unit(spec.name)
    change = files.unit_change.get(spec.file, "none")
    keys = ", ".join(files.unit_keys.get(spec.file, [])[:4])
    if spec.start:
        if not state.running:
            why = "new unit" if change == "new" else f"not running ({state.active_state})"
            out["start"].append(Start(why, spec.name, spec.component))
        elif change == "restart":
            out["restart"].append(Restart(f"unit changed ({keys})", spec.name, spec.component))
        elif change == "reload":
            why = "reloadable settings changed (X-Reload-Triggers)"
            out["reload"].append(Reload(why, spec.name, spec.component))
    if spec.enable:
        if change == "reenable" and state.enabled:
            out["disable"].append(Disable("[Install] section changed", spec.name, spec.component))
            out["enable"].append(Enable("[Install] section changed", spec.name, spec.component))
        elif not state.enabled:
            out["enable"].append(Enable("not enabled", spec.name, spec.component))


def _needs_daemon_reload(files: _Files, observed: Observed, inventory: Inventory) -> bool:
    return bool(
        any(w.file.kind == "unit" for w in files.writes)
        or any(inventory.files[r.path].kind == "unit" for r in files.removes)
        or (
            observed.units is not None
            and any(s.need_daemon_reload for s in observed.units.values())
        )
    )


def _release_pass(
    rendered: Rendered, observed: Observed, inventory: Inventory
) -> tuple[list[InstallRelease], list[PruneRelease]]:
    installs: list[InstallRelease] = []
    for r in rendered.releases:
        have = observed.releases.get(r.version)
        if have is None:
            installs.append(InstallRelease("not installed on this host", r))
        elif r.request.sha256 and have.wheel_sha256 not in ("", r.request.sha256):
            why = f"installed from another atlas wheel (sha256 {have.wheel_sha256[:12]}…)"
            installs.append(InstallRelease(why, r))
    where = rendered.releases_dir
    if not rendered.keep_releases or where is None:
        return installs, []
    units = {
        str(path): (observed.file(path).content or b"").decode("utf-8", "replace")
        for path, entry in inventory.files.items()
        if entry.kind == "unit"
    }
    used = {r.version for r in rendered.releases} | in_use(units, str(where))
    by_age = sorted(observed.releases.values(), key=lambda r: -r.installed_at)
    newest = [i.release.version for i in installs] + [r.version for r in by_age]
    keep = used | set(newest[: rendered.keep_releases])
    prunes = [
        PruneRelease(f"older than the {rendered.keep_releases} newest and used by no unit", v,
                     where / v)
        for v in sorted(set(observed.releases) - keep)
    ]  # fmt: skip
    return installs, prunes


def _blue_green(restarts: list[Action], rendered: Rendered) -> list[Action]:
    """Restarts of blueGreen replicas say the rollout they are (the first one in full)."""
    specs = {u.name: u for u in rendered.units}
    out: list[Action] = []
    said: set[str] = set()
    for action in restarts:
        spec = specs.get(action.target)
        bg = spec.strategy.blue_green if spec and spec.strategy else None
        if spec is None or bg is None or spec.template is None:
            out.append(action)
            continue
        replicas = sum(1 for u in rendered.units if u.template == spec.template)
        why = describe(bg, spec.template, replicas, spec.version)
        if spec.template in said:
            why = "blueGreen, with the replica above"
        said.add(spec.template)
        out.append(Restart(f"{action.reason}; {why}", spec.name, spec.component))
    return out


def plan(
    rendered: Rendered,
    observed: Observed,
    inventory: Inventory,
    *,
    environment: str,
    revision: Revision,
) -> Plan:
    files = _file_pass(rendered, observed, inventory)
    installs, prunes = _release_pass(rendered, observed, inventory)
    mkdirs = [
        MakeDirectory("data folder of the platform", d.path, d.mode)
        for d in rendered.directories
        if not observed.directories.get(d.path, False)
    ]
    stops, disables = _retired_units(rendered, observed, inventory)
    units: dict[str, list[Action]] = {
        "disable": [*disables],
        "reload": [],
        "restart": [],
        "start": [],
        "enable": [],
    }
    for spec in sorted(rendered.units, key=lambda u: _ORDER.get(u.component, 99)):
        _desired_unit(spec, observed, files, units)
    units["restart"] = _blue_green(units["restart"], rendered)
    daemon = (
        [DaemonReload("unit files changed")]
        if _needs_daemon_reload(files, observed, inventory)
        else []
    )
    files.writes.sort(
        key=lambda w: (w.file.kind == "unit", _ORDER.get(w.file.component, 99), str(w.file.path))
    )
    actions: list[Action] = [
        *installs,
        *stops,
        *units["disable"],
        *files.removes,
        *mkdirs,
        *files.writes,
        *daemon,
        *units["reload"],
        *units["restart"],
        *units["start"],
        *units["enable"],
        *prunes,
    ]
    return Plan(environment, revision, tuple(actions), tuple(files.changes))


# --------------------------------------------------------------------------- carried over

_CARRIED = {"restart": Restart, "reload": Reload, "start": Start}
_PHASE = {"daemon-reload": 0, "reload": 1, "restart": 2, "start": 3}


def carried_over(plan: Plan, pending: Iterable[Mapping[str, Any]], rendered: Rendered) -> Plan:
    """``plan`` plus the restarts/reloads/daemon-reload an interrupted run still owed
    (``pending``: its journaled actions not marked done)."""
    desired = {u.name: u for u in rendered.units}
    have = {(a.verb, a.target) for a in plan.actions}
    # a unit the plan starts or restarts comes up with its new config anyway
    launched = {a.target for a in plan.actions if a.verb in ("start", "restart")}
    extra: list[Action] = []
    reason = "carried over from an interrupted reconcile"
    for record in pending:
        verb, target = str(record.get("action", "")), str(record.get("target", ""))
        if (verb, target) in have or (verb in _CARRIED and target in launched):
            continue
        if verb == "daemon-reload":
            extra.append(DaemonReload(reason))
        elif verb in _CARRIED and target in desired and desired[target].start:
            extra.append(_CARRIED[verb](reason, target, desired[target].component))
        have.add((verb, target))
    if not extra:
        return plan
    last = ("enable", "prune-release")
    head = [a for a in plan.actions if a.verb not in (*_PHASE, *last)]
    tail = sorted(
        [*(a for a in plan.actions if a.verb in _PHASE), *extra], key=lambda a: _PHASE[a.verb]
    )
    enables = [a for v in last for a in plan.actions if a.verb == v]
    return Plan(plan.environment, plan.revision, (*head, *tail, *enables), plan.changes)
