"""What a plan is made of: typed actions, each with a human reason, and the plan itself.

Frozen values, so the plan ``--dry-run`` prints is the very object ``apply`` runs.
``as_dict`` is how an action is shown and journaled: verb, target, reason, never a
file's content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, ClassVar

from reconciler.model import Revision
from reconciler.render.desired import DesiredFile, DesiredRelease


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
class InstallRelease(Action):
    """Install a release before any unit changes: a failure fails the rollout first."""

    verb: ClassVar[str] = "install-release"
    release: DesiredRelease

    @property
    def target(self) -> str:
        return str(self.release.path)

    def as_dict(self) -> dict[str, object]:
        return {
            **super().as_dict(),
            "version": self.release.version,
            "sha256": self.release.request.sha256,
        }


@dataclass(frozen=True)
class PruneRelease(Action):
    """Remove a release no unit uses and older than the ``keep`` newest."""

    verb: ClassVar[str] = "prune-release"
    version: str
    path: PurePosixPath

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


def action_record(action: Action) -> dict[str, Any]:
    """How an action is journaled: its verb and target, never file contents."""
    record: dict[str, Any] = dict(action.as_dict())
    if isinstance(action, WriteFile) and not action.file.sensitive:
        record["sha256"] = action.file.sha256
    if isinstance(action, UnitAction):
        record["component"] = action.component
    return record
