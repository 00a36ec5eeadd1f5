"""The unit-state seam: ask systemd whether a component's units are running.

``UnitStates`` is the protocol; ``SystemctlUnits`` asks ``systemctl show`` (or
``systemctl --user show`` for the user scope) about all units in one call and
``parse_show`` — pure, tested on recorded output — reads the answer. A systemctl
that fails or hangs raises ``ProbeFailure``: the components are then unhealthy,
the agent carries on.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from atlas.errors import ProbeFailure

PROPERTIES = ("Id", "LoadState", "ActiveState", "SubState", "Result", "MainPID")


@dataclass(frozen=True)
class UnitStatus:
    name: str
    load_state: str = "not-found"
    active_state: str = "inactive"
    sub_state: str = "dead"
    result: str = "success"
    main_pid: int = 0

    @property
    def active(self) -> bool:
        """Running (or reloading): what a long-running unit must be."""
        return self.load_state == "loaded" and self.active_state in ("active", "reloading")

    @property
    def succeeded(self) -> bool:
        """For a oneshot job: loaded, and its last run did not fail."""
        return (
            self.load_state == "loaded"
            and self.result == "success"
            and self.active_state != "failed"
        )


class UnitStates(Protocol):
    def states(self, units: Sequence[str]) -> dict[str, UnitStatus]: ...


def parse_show(text: str, units: Sequence[str]) -> dict[str, UnitStatus]:
    """Read ``systemctl show -p … U1 U2 …``: one block per unit, in order, blank-line
    separated. Units without a block are reported as not found."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
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
    out = {}
    for i, unit in enumerate(units):
        b = blocks[i] if i < len(blocks) else {}
        pid = b.get("MainPID", "0")
        out[unit] = UnitStatus(
            name=unit,
            load_state=b.get("LoadState", "not-found"),
            active_state=b.get("ActiveState", "inactive"),
            sub_state=b.get("SubState", "dead"),
            result=b.get("Result", "success"),
            main_pid=int(pid) if pid.isdigit() else 0,
        )
    return out


class SystemctlUnits:
    """``UnitStates`` through systemctl; ``env`` carries XDG_RUNTIME_DIR for --user."""

    def __init__(
        self,
        scope: Literal["system", "user"],
        env: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.scope = scope
        self.env = dict(env) if env is not None else None
        self.timeout_s = timeout_s

    def states(self, units: Sequence[str]) -> dict[str, UnitStatus]:
        if not units:
            return {}
        argv = ["systemctl", *(["--user"] if self.scope == "user" else [])]
        argv += ["show", "--no-pager", "-p", ",".join(PROPERTIES), "--", *units]
        try:
            done = subprocess.run(
                argv,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=self.timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise ProbeFailure(f"systemctl show did not answer within {self.timeout_s:g}s") from exc
        except OSError as exc:
            raise ProbeFailure(f"cannot run systemctl: {exc.strerror}") from exc
        if done.returncode != 0:
            detail = " ".join(done.stderr.split())[:300]
            raise ProbeFailure(f"systemctl show failed ({done.returncode}): {detail}")
        return parse_show(done.stdout, units)
