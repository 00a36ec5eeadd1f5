"""The Runtime seam: everything the reconciler asks of systemd.

``Runtime`` is the protocol; ``Systemctl`` implements it with ``systemctl`` (or
``systemctl --user``) and reads unit state by parsing ``systemctl show`` output
(``parse_show``, a pure function tested on recorded output). ``FakeRuntime`` is an
in-memory stand-in for fast tests of the planner and applier.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from reconciler.errors import ReconcilerError, RuntimeUnavailable

SHOW_PROPERTIES = (
    "Id",
    "LoadState",
    "ActiveState",
    "SubState",
    "UnitFileState",
    "MainPID",
    "NRestarts",
    "NeedDaemonReload",
    "Result",
    "ExecMainStatus",
    "InvocationID",
)


_PRIVATE_ENV = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})


class UnitCommandFailed(ReconcilerError):
    """systemctl refused or failed an operation on a unit."""


@dataclass(frozen=True)
class UnitState:
    name: str
    load_state: str = "not-found"  # loaded | not-found | bad-setting | error | masked
    active_state: str = (
        "inactive"  # active | reloading | inactive | failed | activating | deactivating
    )
    sub_state: str = "dead"
    unit_file_state: str = ""  # enabled | disabled | static | generated | "" …
    main_pid: int = 0
    n_restarts: int = 0
    need_daemon_reload: bool = False
    result: str = "success"
    exec_main_status: int = 0
    invocation_id: str = ""

    @property
    def running(self) -> bool:
        return self.active_state in ("active", "reloading", "activating")

    @property
    def enabled(self) -> bool:
        return self.unit_file_state in ("enabled", "enabled-runtime", "linked", "alias")


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def parse_show(output: str) -> dict[str, UnitState]:
    """Parse ``systemctl show -p … UNIT…``: blocks of Key=Value separated by blank lines."""
    states: dict[str, UnitState] = {}
    for block in output.strip("\n").split("\n\n"):
        props: dict[str, str] = {}
        for line in block.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                props[key] = value
        name = props.get("Id")
        if not name:
            continue
        states[name] = UnitState(
            name=name,
            load_state=props.get("LoadState", "not-found"),
            active_state=props.get("ActiveState", "inactive"),
            sub_state=props.get("SubState", "dead"),
            unit_file_state=props.get("UnitFileState", ""),
            main_pid=_int(props.get("MainPID", "0")),
            n_restarts=_int(props.get("NRestarts", "0")),
            need_daemon_reload=props.get("NeedDaemonReload", "no") == "yes",
            result=props.get("Result", "success"),
            exec_main_status=_int(props.get("ExecMainStatus", "0")),
            invocation_id=props.get("InvocationID", ""),
        )
    return states


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
    def restart_later(self, unit: str) -> None:
        """Queue a restart and return at once (for the unit running this process)."""
        ...


class Systemctl:
    """The real thing: ``systemctl [--user]`` in a subprocess."""

    def __init__(
        self, scope: str, env: Mapping[str, str] | None = None, timeout: float = 90.0
    ) -> None:
        self.base = ["systemctl", "--user"] if scope == "user" else ["systemctl"]
        # systemctl must not inherit our sd_notify socket (it would report to it) nor secrets.
        self.env = (
            {
                k: v
                for k, v in env.items()
                if k not in _PRIVATE_ENV and not k.startswith("ATLAS_SECRET")
            }
            if env is not None
            else None
        )
        self.timeout = timeout

    def _run(self, *args: str, check: bool = True) -> str:
        try:
            done = subprocess.run(
                [*self.base, *args],
                capture_output=True,
                text=True,
                env=self.env,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise RuntimeUnavailable("systemctl is not installed") from exc
        except subprocess.TimeoutExpired as exc:
            raise UnitCommandFailed(
                f"systemctl {' '.join(args)} did not finish in {self.timeout}s"
            ) from exc
        if check and done.returncode != 0:
            message = (done.stderr or done.stdout).strip()
            if "Failed to connect to bus" in message or "No medium found" in message:
                raise RuntimeUnavailable(f"cannot reach the systemd manager: {message}")
            raise UnitCommandFailed(
                f"systemctl {' '.join(args)}: {message or f'exit {done.returncode}'}"
            )
        return done.stdout

    def system_state(self) -> str:
        """The manager's SystemState (running, degraded, …); raises RuntimeUnavailable."""
        return self._run("show", "-p", "SystemState", "--value").strip()

    def unit_states(self, names: Sequence[str]) -> dict[str, UnitState]:
        if not names:
            return {}
        out = self._run("show", "-p", ",".join(SHOW_PROPERTIES), "--", *names)
        states = parse_show(out)
        result = {n: states.get(n, UnitState(n)) for n in names}
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
        self._run("start", unit)

    def stop(self, unit: str) -> None:
        self._run("stop", unit)

    def restart(self, unit: str) -> None:
        self._run("restart", unit)

    def reload(self, unit: str) -> None:
        self._run("reload", unit)

    def enable(self, unit: str) -> None:
        self._run("enable", unit)

    def disable(self, unit: str) -> None:
        self._run("disable", unit)

    def reset_failed(self, unit: str) -> None:
        self._run("reset-failed", unit, check=False)

    def restart_later(self, unit: str) -> None:
        self._run("restart", "--no-block", unit)


class FakeRuntime:
    """In-memory service manager for tests: units start instantly and stay up."""

    def __init__(self) -> None:
        self.units: dict[str, UnitState] = {}
        self.calls: list[tuple[str, str]] = []
        self.failing: set[str] = set()  # units that fail when started
        self._pid = 1000

    def _next_pid(self) -> int:
        self._pid += 1
        return self._pid

    def unit_states(self, names: Sequence[str]) -> dict[str, UnitState]:
        return {n: self.units.get(n, UnitState(n)) for n in names}

    def daemon_reload(self) -> None:
        self.calls.append(("daemon-reload", ""))

    def _up(self, unit: str) -> None:
        old = self.units.get(unit, UnitState(unit))
        if unit in self.failing:
            self.units[unit] = replace(
                old,
                load_state="loaded",
                active_state="failed",
                sub_state="failed",
                main_pid=0,
                result="exit-code",
            )
        else:
            self.units[unit] = replace(
                old,
                load_state="loaded",
                active_state="active",
                sub_state="running",
                main_pid=self._next_pid(),
                result="success",
            )

    def start(self, unit: str) -> None:
        self.calls.append(("start", unit))
        if not self.units.get(unit, UnitState(unit)).running:
            self._up(unit)

    def restart(self, unit: str) -> None:
        self.calls.append(("restart", unit))
        self._up(unit)

    def reload(self, unit: str) -> None:
        self.calls.append(("reload", unit))

    def stop(self, unit: str) -> None:
        self.calls.append(("stop", unit))
        old = self.units.get(unit, UnitState(unit))
        self.units[unit] = replace(old, active_state="inactive", sub_state="dead", main_pid=0)

    def enable(self, unit: str) -> None:
        self.calls.append(("enable", unit))
        old = self.units.get(unit, UnitState(unit))
        self.units[unit] = replace(old, unit_file_state="enabled")

    def disable(self, unit: str) -> None:
        self.calls.append(("disable", unit))
        old = self.units.get(unit, UnitState(unit))
        self.units[unit] = replace(old, unit_file_state="disabled")

    def reset_failed(self, unit: str) -> None:
        self.calls.append(("reset-failed", unit))

    def restart_later(self, unit: str) -> None:
        self.calls.append(("restart-later", unit))
        self._up(unit)
