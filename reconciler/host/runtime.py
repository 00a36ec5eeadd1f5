"""The Runtime seam: everything the reconciler asks of the service manager.

``Runtime`` is the protocol; ``Systemctl`` implements it with ``systemctl`` (or
``systemctl --user``), reading unit states through ``seams.systemd`` (the one parser of
``systemctl show``, tested on recorded output) and translating its errors into the
reconciler's: a manager that cannot be reached is ``RuntimeUnavailable`` (temporary),
a refused operation ``UnitCommandFailed``. The in-memory ``FakeRuntime`` for fast
tests lives in ``reconciler.host.testing``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from reconciler.errors import ReconcilerError, RuntimeUnavailable
from seams import systemd
from seams.systemd import Scope, UnitState

__all__ = ["Runtime", "Systemctl", "UnitCommandFailed", "UnitState"]


class UnitCommandFailed(ReconcilerError):
    """systemctl refused or failed an operation on a unit."""

    def __init__(self, message: str, unit: str | None = None) -> None:
        super().__init__(message)
        self.unit = unit  # the unit the operation was for, when it was for one


class Runtime(Protocol):
    """What the reconciler needs from a service manager."""

    def unit_states(self, names: Sequence[str]) -> dict[str, UnitState]: ...
    def daemon_reload(self) -> None: ...
    def start(self, unit: str) -> None: ...
    def stop(self, unit: str) -> None: ...
    def restart(self, unit: str) -> None: ...
    def reload(self, unit: str) -> None: ...
    def enable(self, unit: str) -> None: ...
    def disable(self, unit: str) -> None: ...
    def reset_failed(self, unit: str) -> None: ...
    def request(self, verb: str, unit: str) -> None:
        """Queue ``verb`` (start, restart, reload, stop) for ``unit`` and return at once."""
        ...

    def journal_tail(self, unit: str, lines: int) -> list[str]:
        """The last ``lines`` messages of ``unit`` in the journal (none if unreadable)."""
        ...


class Systemctl:
    """The real thing: ``systemctl [--user]`` in a subprocess."""

    def __init__(
        self, scope: Scope, env: Mapping[str, str] | None = None, timeout: float = 90.0
    ) -> None:
        self.scope: Scope = scope
        self.base = systemd.systemctl_argv(scope)
        self.env = systemd.child_env(env)
        self.timeout = timeout

    def _run(self, *args: str, check: bool = True, unit: str | None = None) -> str:
        try:
            return systemd.run_systemctl(
                self.scope, *args, env=self.env, timeout=self.timeout, check=check
            )
        except systemd.SystemctlMissing as exc:
            raise RuntimeUnavailable(f"systemctl is not installed ({exc})") from exc
        except systemd.SystemctlUnreachable as exc:
            raise RuntimeUnavailable(str(exc)) from exc
        except systemd.SystemctlError as exc:
            raise UnitCommandFailed(str(exc), unit) from exc

    def system_state(self) -> str:
        """The manager's SystemState (running, degraded, …); raises RuntimeUnavailable."""
        return self._run("show", "-p", "SystemState", "--value").strip()

    def manager_version(self) -> str:
        """The manager's systemd version (``257.9-1~deb13u1``); raises RuntimeUnavailable."""
        return self._run("show", "-p", "Version", "--value").strip()

    def unit_states(self, names: Sequence[str]) -> dict[str, UnitState]:
        if not names:
            return {}
        out = self._run("show", "-p", ",".join(systemd.SHOW_PROPERTIES), "--", *names)
        result = systemd.parse_show(out, names)
        # The manager caches UnitFileState and can report "disabled" right after an
        # enable; is-enabled reads the unit files themselves.
        loaded = [n for n in names if result[n].load_state == "loaded"]
        for name, file_state in self._is_enabled(loaded).items():
            result[name] = replace(result[name], unit_file_state=file_state)
        return result

    def _is_enabled(self, names: Sequence[str]) -> dict[str, str]:
        if not names:
            return {}
        lines = self._run("is-enabled", "--", *names, check=False).splitlines()
        if len(lines) == len(names):
            return dict(zip(names, (line.strip() for line in lines), strict=True))
        # is-enabled stops at the first unit it cannot answer for: ask one by one
        return {
            n: (self._run("is-enabled", "--", n, check=False).strip() or "unknown") for n in names
        }

    def daemon_reload(self) -> None:
        self._run("daemon-reload")

    def start(self, unit: str) -> None:
        """Blocks until the unit is started (READY=1 for Type=notify) or failed."""
        self._run("start", unit, unit=unit)

    def stop(self, unit: str) -> None:
        self._run("stop", unit, unit=unit)

    def restart(self, unit: str) -> None:
        self._run("restart", unit, unit=unit)

    def reload(self, unit: str) -> None:
        self._run("reload", unit, unit=unit)

    def enable(self, unit: str) -> None:
        self._run("enable", unit)

    def disable(self, unit: str) -> None:
        self._run("disable", unit)

    def reset_failed(self, unit: str) -> None:
        self._run("reset-failed", unit, check=False)

    def request(self, verb: str, unit: str) -> None:
        self._run(verb, "--no-block", unit, unit=unit)

    def journal_tail(self, unit: str, lines: int) -> list[str]:
        try:  # the unit's last run, so an earlier run's lines do not mislead
            run = self._run("show", "-p", "InvocationID", "--value", "--", unit, check=False)
        except (RuntimeUnavailable, UnitCommandFailed):
            run = ""
        return systemd.journal_tail(self.scope, unit, lines, self.env, run.strip())
