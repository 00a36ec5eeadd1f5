"""A real systemd-journald of its own, for tests of what reaches the journal.

As root, ``unshare --mount`` gives journald a private mount namespace with tmpfs on
``/run`` and ``/var/log``: it binds its own sockets (``/run/systemd/journal/socket``
inside) and keeps a volatile journal there, so nothing of this machine's journal is
read or written. From outside, both are reached through ``/proc/<pid>/root``:
``socket`` is the native protocol's socket, and ``entries`` reads back with
``journalctl --directory … -o json``. ``why_unavailable`` gives the skip reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.monitoring import wait_for

JOURNALD = Path("/lib/systemd/systemd-journald")
_SCRIPT = "mount -t tmpfs tmpfs /run && mount -t tmpfs tmpfs /var/log && exec " + str(JOURNALD)


def why_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "a private journald needs root (a mount namespace)"
    for tool in ("unshare", "journalctl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not JOURNALD.exists():
        return f"{JOURNALD} is not installed (Debian package systemd)"
    if not Path("/etc/machine-id").exists():
        return "/etc/machine-id is missing (journald names its folder by it)"
    return None


class PrivateJournald:
    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> PrivateJournald:
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-ec", _SCRIPT]
        self.process = subprocess.Popen(  # unshare and sh exec: the pid is journald's
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        wait_for(self._ready, timeout, "journald's socket")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            err = self.process.stderr.read().decode() if self.process.stderr else ""
            raise RuntimeError(f"journald exited {self.process.returncode}: {err}")
        return self.socket.is_socket() and bool(list(self.directory.glob("*/*.journal")))

    @property
    def root(self) -> Path:
        assert self.process is not None
        return Path(f"/proc/{self.process.pid}/root")

    @property
    def socket(self) -> Path:
        return self.root / "run/systemd/journal/socket"

    @property
    def directory(self) -> Path:
        return self.root / "run/log/journal"

    def journalctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["journalctl", "--directory", str(self.directory), "--no-pager", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def entries(self, *matches: str, priority: str | None = None) -> list[dict[str, Any]]:
        """Entries (``-o json --all``) matching ``FIELD=value`` ``matches``."""
        args: Sequence[str] = ["-o", "json", "--all", *(["-p", priority] if priority else [])]
        done = self.journalctl(*args, *matches)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"journalctl failed: {done.stderr}")
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def wait_entries(self, *matches: str, count: int = 1, timeout: float = 10.0) -> list[Any]:
        return wait_for(
            lambda: (found := self.entries(*matches)) and len(found) >= count and found,
            timeout,
            f"{count} journal entries matching {' '.join(matches)}",
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        if self.process.stderr:
            self.process.stderr.close()
