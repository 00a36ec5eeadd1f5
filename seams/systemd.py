"""The systemd seam: running ``systemctl`` and reading what ``systemctl show`` says.

``parse_show`` is the one parser of ``systemctl show -p … UNIT…`` output (pure, tested
on recorded output); ``UnitState`` is what it yields, with the questions both the
reconciler and the monitoring agent ask of a unit (running? enabled? did its last
run succeed?). ``run_systemctl`` runs ``systemctl`` (``--user`` for the user scope)
with a timeout and an environment stripped of this process's sd_notify socket and
secrets, and raises a ``SystemctlError`` subclass each caller translates into its
own error tree.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Scope = Literal["system", "user"]

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

# What systemctl must not inherit from us: our own sd_notify socket (it would report
# to it) and the secrets a unit's EnvironmentFile gave us.
_PRIVATE_ENV = frozenset({"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"})
_SECRET_PREFIX = "ATLAS_SECRET"  # noqa: S105 - a variable-name prefix, not a password


@dataclass(frozen=True)
class UnitState:
    name: str
    load_state: str = "not-found"  # loaded | not-found | bad-setting | error | masked
    active_state: str = "inactive"  # active | reloading | inactive | failed | activating | …
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
        """Up or on its way up (what the reconciler expects of a unit it starts)."""
        return self.active_state in ("active", "reloading", "activating")

    @property
    def active(self) -> bool:
        """Loaded and running (or reloading): what a long-running unit must be."""
        return self.load_state == "loaded" and self.active_state in ("active", "reloading")

    @property
    def enabled(self) -> bool:
        return self.unit_file_state in ("enabled", "enabled-runtime", "linked", "alias")

    @property
    def succeeded(self) -> bool:
        """For a oneshot job: loaded, and its last run did not fail."""
        return (
            self.load_state == "loaded"
            and self.result == "success"
            and self.active_state != "failed"
        )


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _blocks(output: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in output.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _state(name: str, props: Mapping[str, str]) -> UnitState:
    return UnitState(
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


def parse_show(output: str, names: Sequence[str] | None = None) -> dict[str, UnitState]:
    """Read ``systemctl show -p … U1 U2 …``: one blank-line separated block per unit.

    With ``names`` (the units asked about, in order) blocks are matched by position,
    which also holds for an alias (whose ``Id`` is the unit it points to), and a unit
    without a block is reported as not found. Without ``names``, blocks are keyed
    by their ``Id``.
    """
    blocks = _blocks(output)
    if names is None:
        return {b["Id"]: _state(b["Id"], b) for b in blocks if b.get("Id")}
    return {
        name: _state(name, blocks[i] if i < len(blocks) else {}) for i, name in enumerate(names)
    }


class SystemctlError(Exception):
    """systemctl could not do what it was asked."""


class SystemctlMissing(SystemctlError):
    """systemctl cannot be run here."""


class SystemctlUnreachable(SystemctlError):
    """systemctl runs, but cannot reach the service manager."""


class SystemctlTimeout(SystemctlError):
    """systemctl did not finish in time."""


class SystemctlFailed(SystemctlError):
    """systemctl refused or failed the operation."""


def systemctl_argv(scope: Scope) -> list[str]:
    return ["systemctl", "--user"] if scope == "user" else ["systemctl"]


def journal_tail(
    scope: Scope,
    unit: str,
    lines: int,
    env: Mapping[str, str] | None,
    invocation: str = "",
) -> list[str]:
    """The last ``lines`` journal messages of ``unit``: of its run ``invocation`` (its
    own output and the manager's words on it) when given, else of all its runs. None
    when there is no journal to read (no journald, or journalctl missing)."""
    argv = ["journalctl", *(["--user"] if scope == "user" else [])]
    if invocation:
        argv += [f"_SYSTEMD_INVOCATION_ID={invocation}", "+", f"INVOCATION_ID={invocation}"]
        argv += ["+", f"USER_INVOCATION_ID={invocation}"]
    else:
        argv += ["-u", unit]
    argv += ["-n", str(lines), "-o", "cat", "--no-pager", "-q"]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            env=dict(env) if env is not None else None,
            timeout=5.0,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []
    return [line.rstrip() for line in done.stdout.splitlines() if line.strip()][-lines:]


def child_env(env: Mapping[str, str] | None) -> dict[str, str] | None:
    """``env`` without our sd_notify socket and secrets (None: inherit as it is)."""
    if env is None:
        return None
    return {
        k: v for k, v in env.items() if k not in _PRIVATE_ENV and not k.startswith(_SECRET_PREFIX)
    }


def run_systemctl(
    scope: Scope,
    *args: str,
    env: Mapping[str, str] | None,
    timeout: float,
    check: bool = True,
) -> str:
    """``systemctl [--user] ARGS``'s standard output; ``env`` is passed as it is."""
    what = f"systemctl {' '.join(args)}"
    try:
        done = subprocess.run(
            [*systemctl_argv(scope), *args],
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SystemctlTimeout(f"{what} did not finish in {timeout:g}s") from exc
    except OSError as exc:
        raise SystemctlMissing(f"cannot run systemctl: {exc.strerror}") from exc
    if done.returncode < 0:  # systemctl itself was killed (our unit is being stopped)
        signame = signal.Signals(-done.returncode).name
        raise SystemctlUnreachable(f"{what} was interrupted by {signame}")
    if check and done.returncode != 0:
        message = " ".join((done.stderr or done.stdout).split())[:500]
        if "Failed to connect to bus" in message or "No medium found" in message:
            raise SystemctlUnreachable(f"cannot reach the systemd manager: {message}")
        raise SystemctlFailed(f"{what}: {message or f'exit {done.returncode}'}")
    return done.stdout


def show(
    scope: Scope,
    names: Sequence[str],
    *,
    env: Mapping[str, str] | None,
    timeout: float,
    properties: Sequence[str] = SHOW_PROPERTIES,
) -> dict[str, UnitState]:
    """The state of each unit in ``names`` (one ``systemctl show`` for all of them)."""
    if not names:
        return {}
    out = run_systemctl(
        scope, "show", "--no-pager", "-p", ",".join(properties), "--", *names,
        env=env, timeout=timeout,
    )  # fmt: skip
    return parse_show(out, names)
