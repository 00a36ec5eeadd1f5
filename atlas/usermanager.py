"""A private systemd user manager, for the demo and the tests (DESIGN.md §5).

As root, in a new mount namespace, a tmpfs on /run/systemd with /run/systemd/system
in it makes ``systemd --user`` believe it runs on a systemd host. ``systemctl
--user`` reaches it from outside through ``XDG_RUNTIME_DIR``.

Its folders live under /var/lib/atlas-tests, not /tmp: Atlas's units use
PrivateTmp=, which would hide anything under /tmp from the services.

Each manager runs in a cgroup of its own (a child of this process's cgroup, named
after its folder). Without one, every private manager started from one cgroup would
put a unit of the same name (atlas-core.service of the demo and of a test) in the
same cgroup, and stopping one would wait for, or kill, the other's processes.

``why_unavailable`` says why one cannot be started here (not root, no systemd,
no unshare); the test fixture skips with that reason, except under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

DEFAULT_BASE = Path("/var/lib/atlas-tests")
SYSTEMD = Path("/lib/systemd/systemd")


class ManagerUnavailable(Exception):
    pass


def why_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to boot a private systemd user manager"
    if not SYSTEMD.exists():
        return f"{SYSTEMD} is not installed"
    if shutil.which("unshare") is None or shutil.which("systemctl") is None:
        return "unshare or systemctl is missing"
    return None


class PrivateManager:
    def __init__(self, parent: Path = DEFAULT_BASE, base: Path | None = None) -> None:
        """A manager whose folders live in ``base``, or in a new folder under ``parent``."""
        if base is None:
            parent.mkdir(parents=True, exist_ok=True)
            base = Path(tempfile.mkdtemp(prefix="sd-", dir=parent))
        self.base = base
        self.runtime_dir = self.base / "run"
        self.config_home = self.base / "config"
        self.state_home = self.base / "state"
        self.home = self.base / "home"
        for d in (self.runtime_dir, self.config_home, self.state_home, self.home):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.log = self.base / "manager.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """Environment for commands that talk to this manager (systemctl --user, atlas)."""
        env = dict(os.environ)
        env.update(
            XDG_RUNTIME_DIR=str(self.runtime_dir),
            XDG_CONFIG_HOME=str(self.config_home),
            XDG_STATE_HOME=str(self.state_home),
            HOME=str(self.home),
        )
        env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        return env

    def running(self) -> bool:
        state = self.systemctl("show", "-p", "SystemState", "--value", check=False).stdout.strip()
        return state in ("running", "degraded")

    @property
    def cgroups(self) -> list[Path]:
        """This manager's own cgroup, in each hierarchy systemd tracks units in."""
        return _cgroup_dirs(f"atlas-{self.base.name}")

    def _enter_cgroups(self) -> str:
        """The shell that moves the manager into its own cgroups (none: stays put)."""
        moves = []
        for d in self.cgroups:
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError:
                continue  # not ours to create: share the parent cgroup, as before
            moves.append(f"echo $$ > {d / 'cgroup.procs'} && ")
        return "".join(moves)

    def start(self, timeout: float = 20.0) -> None:
        script = (
            f"{self._enter_cgroups()}"
            "mount -t tmpfs tmpfs /run/systemd && mkdir -p /run/systemd/system && "
            f"exec {SYSTEMD} --user"
        )
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text()[-2000:]
                raise ManagerUnavailable(
                    f"systemd --user exited with {self.proc.returncode}: {tail}"
                )
            state = self.systemctl(
                "show", "-p", "SystemState", "--value", check=False
            ).stdout.strip()
            if state in ("running", "degraded"):
                return
            time.sleep(0.1)
        self.stop()
        raise ManagerUnavailable(f"systemd --user did not come up in {timeout}s")

    def systemctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["systemctl", "--user", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.systemctl("show", unit, "-p", ",".join(props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def stop(self) -> None:
        """Stop the manager (and every unit it runs), and remove its cgroup."""
        self.systemctl("exit", check=False)
        if self.proc is None:  # started by another process (the demo): wait it out
            deadline = time.monotonic() + 15
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.1)
        else:
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            self.proc = None
        for d in self.cgroups:
            _remove_cgroup(d)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def _cgroup_dirs(name: str) -> list[Path]:
    """``name`` under this process's cgroup in the hierarchies systemd uses: the named
    ``systemd`` one (hybrid hosts) and the unified one (cgroup v2)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    unified = Path("/sys/fs/cgroup/unified")
    out = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "name=systemd":
            root = Path("/sys/fs/cgroup/systemd")
        elif controllers == "":
            root = unified if unified.is_dir() else Path("/sys/fs/cgroup")
        else:
            continue
        if (root / "cgroup.procs").exists():
            out.append(root / path.lstrip("/") / name)
    return out


def _remove_cgroup(path: Path, wait: float = 5.0) -> None:
    """Remove a cgroup and what the manager left below it, deepest first, once its last
    processes are gone (they leave a moment after the manager says it exits)."""
    deadline = time.monotonic() + wait
    while path.is_dir():
        dirs = sorted((p for p in path.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, path]:
            with contextlib.suppress(OSError):
                d.rmdir()
        if not path.is_dir() or time.monotonic() > deadline:
            return
        time.sleep(0.1)
