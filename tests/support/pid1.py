"""A real PID-1 systemd for system-scope tests: this host's own /usr booted in a
container (DESIGN.md §5).

``systemd-nspawn --directory=/ --volatile=yes`` boots the host's /usr on a tmpfs root
with its own network namespace (only a loopback): /etc, /var and /opt start empty and
vanish with the container, so a test can write /etc/systemd/system, /etc/atlas and
/var/lib/atlas as a production host would without touching this machine. Commands run
inside through ``nsenter`` into the container leader's namespaces. Folders of the host
are brought in with ``bind`` (read-write) and ``bind_ro``.

Atlas is installed inside from a wheelhouse with the distribution's own
``/usr/bin/python3`` into ``/opt/atlas`` (a venv under /root would be unreadable to
DynamicUser= services).

One place for every issue's system-scope tests: ``Pid1Host.boot`` and ``run``,
``install_atlas``, ``reset`` between tests, ``why_unavailable`` for the skip reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

NSPAWN = "systemd-nspawn"
ATLAS_VENV = "/opt/atlas"
PATH = "/opt/atlas/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# installed on this machine, pointless in the container and slow or failing at boot
MASKED = ("prometheus.service", "systemd-firstboot.service", "apt-daily.timer")


def why_unavailable() -> str | None:
    """Why a PID-1 systemd container cannot run here, or None when it can."""
    if os.geteuid() != 0:
        return "booting a systemd container needs root"
    for tool in (NSPAWN, "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (Debian package systemd-container / util-linux)"
    if not Path("/usr/lib/systemd/systemd").exists():
        return "systemd is not installed"
    return None


class ContainerFailed(RuntimeError):
    pass


@dataclass
class Pid1Host:
    """One booted container; ``bind`` and ``bind_ro`` map host folders to its paths."""

    bind: Mapping[Path, str] = field(default_factory=dict)
    bind_ro: Mapping[Path, str] = field(default_factory=dict)
    name: str = field(default_factory=lambda: f"atlas-{uuid.uuid4().hex[:8]}")
    console: Path | None = None  # where the boot messages go
    process: subprocess.Popen[bytes] | None = None
    leader: int = 0

    def boot(self, timeout: float = 120.0) -> None:
        argv = [
            NSPAWN,
            "--quiet",
            "--directory=/",
            "--volatile=yes",
            "--private-network",
            "--register=no",
            "--keep-unit",
            "--console=pipe",
            f"--machine={self.name}",
            *(f"--bind={h}:{c}" for h, c in self.bind.items()),
            *(f"--bind-ro={h}:{c}" for h, c in self.bind_ro.items()),
            "-b",
            "systemd.firstboot=off",
            *(f"systemd.mask={unit}" for unit in MASKED),
        ]
        out = open(self.console, "wb") if self.console else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = time.monotonic() + timeout
        self.leader = self._wait_for_leader(deadline)
        left = max(1.0, deadline - time.monotonic())
        state = self.run(
            "systemctl", "is-system-running", "--wait", check=False, timeout=left
        ).stdout.strip()
        if state not in ("running", "degraded"):
            raise ContainerFailed(f"the container booted into {state!r}: {self.boot_log()}")

    def _wait_for_leader(self, deadline: float) -> int:
        assert self.process is not None
        pid = self.process.pid
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ContainerFailed(
                    f"systemd-nspawn exited {self.process.returncode}: {self.boot_log()}"
                )
            for child in _children(pid):
                # booted far enough to take commands once its manager answers
                if _cmdline(child)[:1] == ["/usr/lib/systemd/systemd"] and self._answers(child):
                    return child
            time.sleep(0.2)
        raise ContainerFailed(f"no systemd in the container after the deadline: {self.boot_log()}")

    def _answers(self, leader: int) -> bool:
        self.leader = leader
        try:
            return (
                self.run("systemctl", "show", "-p", "Version", check=False, timeout=10).returncode
                == 0
            )
        except subprocess.TimeoutExpired:
            return False

    def boot_log(self) -> str:
        if self.console and self.console.exists():
            return self.console.read_text(errors="replace")[-3000:]
        return "(no console log)"

    def enter(self) -> list[str]:
        """The argv prefix that runs a command inside the container."""
        return ["nsenter", f"--target={self.leader}", "--mount", "--uts", "--ipc",
                "--net", "--pid", "--"]  # fmt: skip

    def run(
        self,
        *argv: str,
        check: bool = True,
        timeout: float = 120.0,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str = "/",
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` inside the container as root; raise on failure when ``check``."""
        full_env = {"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", **(env or {})}
        cmd = [*self.enter(), "env", "-C", cwd, *argv]
        done = subprocess.run(cmd, input=input, capture_output=True, text=True,
                              timeout=timeout, env=full_env, check=False)  # fmt: skip
        if check and done.returncode != 0:
            raise ContainerFailed(
                f"{' '.join(argv)} exited {done.returncode}\n"
                f"stdout: {done.stdout[-4000:]}\nstderr: {done.stderr[-4000:]}"
            )
        return done

    def sh(self, script: str, check: bool = True, timeout: float = 120.0) -> str:
        return self.run("sh", "-ec", script, check=check, timeout=timeout).stdout

    def install_atlas(self, wheelhouse: str, python: str = "/usr/bin/python3") -> str:
        """Install Atlas from the wheelhouse (a container path) into /opt/atlas."""
        self.run(python, "-m", "venv", ATLAS_VENV)
        self.run(f"{ATLAS_VENV}/bin/pip", "install", "--quiet", "--no-index",
                 "--disable-pip-version-check", "--find-links", wheelhouse, "atlas",
                 timeout=600)  # fmt: skip
        return f"{ATLAS_VENV}/bin/atlas"

    def unit_state(self, unit: str) -> dict[str, str]:
        out = self.run("systemctl", "show", "-p", "ActiveState,SubState,Result,MainPID,User,DynamicUser,StatusText",
                       "--", unit).stdout  # fmt: skip
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str, lines: int = 30) -> str:
        return self.run("journalctl", "-u", unit, "-n", str(lines), "--no-pager", "-o", "cat",
                        check=False).stdout  # fmt: skip

    def reset(self) -> None:
        """Remove every Atlas unit, file and folder: the host as it was before Atlas."""
        self.sh(
            "units=$(systemctl list-units --all --plain --no-legend 'atlas-*' | cut -d' ' -f1)\n"
            '[ -z "$units" ] || systemctl stop $units || true\n'
            "rm -f /etc/systemd/system/atlas-* /etc/systemd/system/*/atlas-*\n"
            "rm -rf /etc/atlas /var/lib/atlas /var/lib/private/atlas\n"
            "systemctl daemon-reload\n"
            "systemctl reset-failed\n",
            timeout=180,
        )

    def poweroff(self, timeout: float = 60.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        # SIGTERM to nspawn asks the container's systemd to halt
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    kids = [int(p) for p in text.split()]
    return kids + [g for k in kids for g in _children(k)]


def _cmdline(pid: int) -> Sequence[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []
