"""The unit-state seam: ask systemd whether a component's units are running.

``UnitStates`` is the protocol; ``SystemctlUnits`` asks ``systemctl show`` (or
``systemctl --user show`` for the user scope) about all units in one call, through
:func:`seams.systemd.show` and its parser (``UnitState`` is what it yields). A
systemctl that is missing, fails or hangs raises ``ProbeFailure``: the components
are then unhealthy, the agent carries on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Protocol

from atlas.errors import ProbeFailure
from seams.systemd import Scope, SystemctlError, UnitState, child_env, show


class UnitStates(Protocol):
    def states(self, units: Sequence[str]) -> dict[str, UnitState]: ...


class SystemctlUnits:
    """``UnitStates`` through systemctl; ``env`` (default: ours) carries XDG_RUNTIME_DIR
    for --user. systemctl never gets our sd_notify socket nor the channels' secrets."""

    def __init__(
        self,
        scope: Scope,
        env: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.scope = scope
        self.env = child_env(os.environ if env is None else env)
        self.timeout_s = timeout_s

    def states(self, units: Sequence[str]) -> dict[str, UnitState]:
        try:
            return show(self.scope, units, env=self.env, timeout=self.timeout_s)
        except SystemctlError as exc:
            raise ProbeFailure(str(exc)) from exc
