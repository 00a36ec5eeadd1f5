"""The units that use the content database, stopped and started around a restore.

``UnitControl`` is the seam (a fake in unit tests); ``SystemdUnits`` drives it with
``systemctl`` of the host's scope, through the one systemd seam (``seams.systemd``).
Only the worker and the API open the database: ``atlas-core*`` and ``atlas-api*``
(replicas included).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from atlas.errors import BackupError
from seams.systemd import Scope, SystemctlError, run_systemctl

PATTERNS = ("atlas-core*.service", "atlas-api*.service")


class UnitControl(Protocol):
    def active(self) -> list[str]: ...
    def stop(self, units: Sequence[str]) -> None: ...
    def start(self, units: Sequence[str]) -> None: ...


class NoUnits:
    """For a restore to a file no unit uses."""

    def active(self) -> list[str]:
        return []

    def stop(self, units: Sequence[str]) -> None:
        return None

    def start(self, units: Sequence[str]) -> None:
        return None


class SystemdUnits:
    def __init__(self, scope: Scope, env: Mapping[str, str] | None, timeout: float = 120.0):
        self.scope, self.env, self.timeout = scope, env, timeout

    def _run(self, *args: str) -> str:
        try:
            return run_systemctl(self.scope, *args, env=self.env, timeout=self.timeout)
        except SystemctlError as exc:
            raise BackupError(f"cannot {args[0]} the units around the restore: {exc}") from exc

    def active(self) -> list[str]:
        out = self._run(
            "list-units", "--plain", "--no-legend", "--type=service",
            "--state=active,activating,reloading", "--", *PATTERNS,
        )  # fmt: skip
        return [line.split()[0] for line in out.splitlines() if line.strip()]

    def stop(self, units: Sequence[str]) -> None:
        if units:
            self._run("stop", "--", *units)

    def start(self, units: Sequence[str]) -> None:
        if units:
            self._run("start", "--", *units)
