"""In-memory doubles of the reconciler's host seams, for fast tests.

Never used by Atlas itself: the service manager here starts units instantly, the
HTTP probe answers what a test tells it to, and releases install in no time.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from reconciler.host.releases import (
    MARKER,
    InstalledRelease,
    ReleaseError,
    ReleaseRequest,
    read_installed,
)
from seams.systemd import UnitState


class FakeRuntime:
    """In-memory service manager for tests: units start instantly and stay up."""

    def __init__(self) -> None:
        self.units: dict[str, UnitState] = {}
        self.calls: list[tuple[str, str]] = []
        self.failing: set[str] = set()  # units that fail when started
        self.journals: dict[str, list[str]] = {}  # unit → what it wrote to the journal
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

    def request(self, verb: str, unit: str) -> None:
        getattr(self, verb)(unit)
        self.calls[-1] = (f"{verb}-later", unit)

    def journal_tail(self, unit: str, lines: int) -> list[str]:
        return self.journals.get(unit, [])[-lines:]


class FakeProbe:
    """Answers 200 except for URLs set to fail (with a status, or None: refused)."""

    def __init__(self) -> None:
        self.failing: dict[str, int | None] = {}
        self.calls: list[str] = []

    def status(self, url: str, timeout: float) -> int:
        self.calls.append(url)
        for prefix, code in self.failing.items():
            if url.startswith(prefix):
                if code is None:
                    raise OSError("connection refused")
                return code
        return 200


class FakeInstaller:
    """Installs releases instantly as a folder holding only the marker (real files,
    so observing the host finds them); versions in ``failing`` cannot be installed."""

    def __init__(self, releases_dir: Path, clock: Callable[[], float] = time.time) -> None:
        self.dir = releases_dir
        self.clock = clock
        self.failing: set[str] = set()
        self.calls: list[tuple[str, str]] = []

    def install(self, request: ReleaseRequest) -> InstalledRelease:
        self.calls.append(("install", request.version))
        if request.version in self.failing:
            raise ReleaseError(f"release {request.version} from {request.source}: not found")
        have = read_installed(self.dir).get(request.version)
        if have is not None:
            return have
        release = InstalledRelease(request.version, request.sha256 or "0" * 64, self.clock())
        folder = self.dir / request.version
        folder.mkdir(parents=True, exist_ok=True)
        marker = {
            "version": release.version,
            "wheel_sha256": release.wheel_sha256,
            "installed_at": release.installed_at,
        }
        (folder / MARKER).write_text(json.dumps(marker))
        return release

    def remove(self, version: str) -> None:
        self.calls.append(("remove", version))
        shutil.rmtree(self.dir / version, ignore_errors=True)


class FakeReplica:
    """One API replica as its preview port shows it: counts what it serves, fails
    every ``error_every``-th data request with a 500, answers /readyz per ``ready``."""

    def __init__(self, version: str, ready: bool = True, error_every: int = 0) -> None:
        self.version, self.ready, self.error_every = version, ready, error_every
        self.served: dict[tuple[str, str], int] = {}  # (route, status) → count
        self.data = 0

    def serve(self, path: str) -> tuple[int, str]:
        if path == "/metrics":
            return 200, self.metrics()
        if path == "/healthz":
            return 200, json.dumps({"status": "ok", "version": self.version})
        if path == "/readyz":
            status = 200 if self.ready else 503
        else:
            self.data += 1
            status = 500 if self.error_every and self.data % self.error_every == 0 else 200
        route = path.partition("?")[0]
        self.served[(route, str(status))] = self.served.get((route, str(status)), 0) + 1
        return status, "{}"

    def metrics(self) -> str:
        lines = []
        for (route, status), n in sorted(self.served.items()):
            labels = f'route="{route}",method="GET",status="{status}"'
            lines.append(f"atlas_http_requests_total{{{labels}}} {n}")
            for le in ("0.005", "+Inf"):
                lines.append(
                    f'atlas_http_request_duration_seconds_bucket{{{labels},le="{le}"}} {n}'
                )
        return "\n".join(lines) + "\n"


class FakeReplicas:
    """API replicas by preview port; a port with none refuses the connection."""

    def __init__(self) -> None:
        self.ports: dict[int, FakeReplica] = {}
        self.calls: list[tuple[int, str]] = []

    def get(self, port: int, path: str, timeout: float) -> tuple[int, str]:
        self.calls.append((port, path))
        replica = self.ports.get(port)
        if replica is None:
            raise OSError("connection refused")
        return replica.serve(path)
