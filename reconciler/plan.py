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

Order: stop → disable → remove files → make directories → write config and env
files → write unit files → daemon-reload → reload → restart → start → enable, with
starts in component order (core, api, services, monitoring) and stops in reverse.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import ClassVar

from reconciler.host import unitfile
from reconciler.inventory import Inventory
from reconciler.model import COMPONENTS, Revision
from reconciler.observe import Observed
from reconciler.render.desired import DesiredFile, Rendered

_ORDER = {c: i for i, c in enumerate((*COMPONENTS, "reconciler"))}


@dataclass(frozen=True)
class Action:
    verb: ClassVar[str] = "action"
    reason: str

    @property
    def target(self) -> str:
        return ""

    def as_dict(self) -> dict[str, object]:
        return {"action": self.verb, "target": self.target, "reason": self.reason}


@dataclass(frozen=True)
class WriteFile(Action):
    verb: ClassVar[str] = "write"
    file: DesiredFile
    created: bool = False

    @property
    def target(self) -> str:
        return str(self.file.path)

    def as_dict(self) -> dict[str, object]:
        return {
            **super().as_dict(),
            "mode": f"{self.file.mode:04o}",
            "created": self.created,
            "sensitive": self.file.sensitive,
            "sha256": None if self.file.sensitive else self.file.sha256,
        }


@dataclass(frozen=True)
class RemoveFile(Action):
    verb: ClassVar[str] = "remove"
    path: PurePosixPath

    @property
    def target(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class MakeDirectory(Action):
    verb: ClassVar[str] = "mkdir"
    path: PurePosixPath
    mode: int

    @property
    def target(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class DaemonReload(Action):
    verb: ClassVar[str] = "daemon-reload"


@dataclass(frozen=True)
class UnitAction(Action):
    unit: str
    component: str

    @property
    def target(self) -> str:
        return self.unit


@dataclass(frozen=True)
class Stop(UnitAction):
    verb: ClassVar[str] = "stop"


@dataclass(frozen=True)
class Disable(UnitAction):
    verb: ClassVar[str] = "disable"


@dataclass(frozen=True)
class Reload(UnitAction):
    verb: ClassVar[str] = "reload"


@dataclass(frozen=True)
class Restart(UnitAction):
    verb: ClassVar[str] = "restart"


@dataclass(frozen=True)
class Start(UnitAction):
    verb: ClassVar[str] = "start"


@dataclass(frozen=True)
class Enable(UnitAction):
    verb: ClassVar[str] = "enable"


ACTION_TYPES: dict[str, type[Action]] = {
    t.verb: t
    for t in (
        WriteFile,
        RemoveFile,
        MakeDirectory,
        DaemonReload,
        Stop,
        Disable,
        Reload,
        Restart,
        Start,
        Enable,
    )
}


@dataclass(frozen=True)
class FileChange:
    """What changes in one file, for people: a diff, or for secrets only their names."""

    path: PurePosixPath
    sensitive: bool
    diff: str = ""
    secrets: tuple[tuple[str, str], ...] = ()  # (name, "added" | "changed" | "removed")


@dataclass(frozen=True)
class Plan:
    environment: str
    revision: Revision
    actions: tuple[Action, ...]
    changes: tuple[FileChange, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.actions

    def of(self, verb: str) -> list[Action]:
        return [a for a in self.actions if a.verb == verb]

    def units(self, verb: str) -> list[str]:
        return [a.unit for a in self.actions if isinstance(a, UnitAction) and a.verb == verb]


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


def plan(
    rendered: Rendered,
    observed: Observed,
    inventory: Inventory,
    *,
    environment: str,
    revision: Revision,
) -> Plan:
    writes: list[WriteFile] = []
    changes: list[FileChange] = []
    unit_change: dict[PurePosixPath, str] = {}  # unit file → none|reenable|reload|restart|new
    unit_keys: dict[PurePosixPath, list[str]] = {}

    desired_paths = {f.path for f in rendered.files}
    for f in rendered.files:
        obs = observed.file(f.path)
        known = inventory.files.get(f.path)
        if obs.content == f.content and obs.mode == f.mode:
            continue
        if not obs.exists:
            reason = "new file" if known is None else "missing on the host (removed by hand?)"
            writes.append(WriteFile(reason, f, created=True))
        elif obs.content == f.content:
            writes.append(WriteFile(f"mode {obs.mode or 0:04o} → {f.mode:04o}", f))
        elif known is not None and not f.sensitive and known.sha256 == f.sha256:
            writes.append(WriteFile("changed on the host since Atlas wrote it (drift)", f))
        else:
            writes.append(WriteFile("content changed", f))
        if f.sensitive:
            secrets = _secret_changes(f.secret_digests, known.secret_digests if known else None)
            changes.append(FileChange(f.path, True, "", secrets))
            if secrets:
                summary = ", ".join(f"secret {n} {what}" for n, what in secrets)
                writes[-1] = WriteFile(summary, f, writes[-1].created)
        elif obs.content != f.content:
            changes.append(FileChange(f.path, False, _diff(f.path, obs.content, f.content)))
        if f.kind == "unit":
            if not obs.exists:
                unit_change[f.path] = "new"
            else:
                old_text = (obs.content or b"").decode("utf-8", "replace")
                new_text = f.content.decode("utf-8", "replace")
                unit_change[f.path] = unitfile.classify(old_text, new_text)
                unit_keys[f.path] = unitfile.changed_keys(old_text, new_text)

    removes: list[RemoveFile] = []
    for path, entry in sorted(inventory.files.items()):
        if path in desired_paths:
            continue
        if observed.file(path).exists:
            removes.append(
                RemoveFile(f"no longer desired (Atlas created it for {entry.component})", path)
            )
            if entry.kind == "env":
                changes.append(
                    FileChange(path, True, "", _secret_changes({}, entry.secret_digests))
                )
            else:
                changes.append(
                    FileChange(path, False, _diff(path, observed.file(path).content, None))
                )

    mkdirs = [
        MakeDirectory("data folder of the platform", d.path, d.mode)
        for d in rendered.directories
        if not observed.directories.get(d.path, False)
    ]

    # ---- units
    desired_units = {u.name: u for u in rendered.units}
    stops: list[Stop] = []
    disables: list[Disable] = []
    for name, unit in sorted(
        inventory.units.items(), key=lambda kv: -_ORDER.get(kv[1].component, 99)
    ):
        if name in desired_units:
            continue
        state = observed.unit(name)
        if state.running or observed.units is None:
            stops.append(Stop("no longer desired", name, unit.component))
        if state.enabled or (observed.units is None and unit.enable):
            disables.append(Disable("no longer desired", name, unit.component))

    reloads: list[Reload] = []
    restarts: list[Restart] = []
    starts: list[Start] = []
    enables: list[Enable] = []
    for spec in sorted(rendered.units, key=lambda u: _ORDER.get(u.component, 99)):
        state = observed.unit(spec.name)
        change = unit_change.get(spec.file, "none")
        keys = ", ".join(unit_keys.get(spec.file, [])[:4])
        if spec.start:
            if not state.running:
                why = "new unit" if change == "new" else f"not running ({state.active_state})"
                starts.append(Start(why, spec.name, spec.component))
            elif change == "restart":
                restarts.append(Restart(f"unit changed ({keys})", spec.name, spec.component))
            elif change == "reload":
                reloads.append(
                    Reload(
                        "reloadable settings changed (X-Reload-Triggers)", spec.name, spec.component
                    )
                )
        if spec.enable:
            if change == "reenable" and state.enabled:
                disables.append(Disable("[Install] section changed", spec.name, spec.component))
                enables.append(Enable("[Install] section changed", spec.name, spec.component))
            elif not state.enabled:
                enables.append(Enable("not enabled", spec.name, spec.component))

    needs_reload = bool(
        any(w.file.kind == "unit" for w in writes)
        or any(inventory.files[r.path].kind == "unit" for r in removes)
        or (
            observed.units is not None
            and any(s.need_daemon_reload for s in observed.units.values())
        )
    )
    daemon: list[DaemonReload] = [DaemonReload("unit files changed")] if needs_reload else []

    writes.sort(
        key=lambda w: (w.file.kind == "unit", _ORDER.get(w.file.component, 99), str(w.file.path))
    )
    actions: list[Action] = [
        *stops,
        *disables,
        *removes,
        *mkdirs,
        *writes,
        *daemon,
        *reloads,
        *restarts,
        *starts,
        *enables,
    ]
    return Plan(environment, revision, tuple(actions), tuple(changes))
