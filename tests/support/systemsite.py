"""A site converged in the system scope of a PID-1 systemd container (tests/support/pid1):
a manifests repository (bare origin + working clone) in the folder the container
shares with this host, the staging example Environment, its key in /etc/atlas/keys,
and ``atlas`` installed from the wheel under /opt/atlas."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.support.examples import EXAMPLE, FIXTURE_KEYS
from tests.support.git import commit, git
from tests.support.pid1 import ATLAS_VENV, Pid1Host

ENV = "staging"
ENV_FILE = f"environments/{ENV}/environment.yaml"
COMPONENTS = ("atlas-core.service", "atlas-api.service", "atlas-monitoring.service")


class SystemSite:
    """``share`` is the host folder the container sees at ``inside``."""

    def __init__(self, host: Pid1Host, share: Path, inside: str, name: str) -> None:
        self.host = host
        folder = share / name
        self.bare = folder / "origin.git"
        self.bare_inside = f"{inside}/{name}/origin.git"
        self.work = folder / "work"
        shutil.copytree(EXAMPLE, self.work)
        git(self.work, "init", "-q", "-b", "main")
        git(self.work, "add", "-A")
        git(self.work, "commit", "-qm", "initial")
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.bare)], check=True)
        git(self.work, "remote", "add", "origin", str(self.bare))
        self.push()
        key = folder / "staging.key"
        shutil.copy(FIXTURE_KEYS / "staging.key", key)
        host.run("install", "-D", "-m", "0600", f"{inside}/{name}/staging.key",
                 f"/etc/atlas/keys/{ENV}.key")  # fmt: skip

    def push(self) -> None:
        git(self.work, "push", "-q", "origin", "main")

    def change(self, path: str, old: str, new: str, message: str = "change") -> str:
        sha = commit(self.work, path, old, new, message)
        self.push()
        return sha

    def atlas(
        self, *args: str, check: bool = False, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return self.host.run(f"{ATLAS_VENV}/bin/atlas", *args, check=check, timeout=timeout)

    def target(self) -> list[str]:
        return ["--repo", self.bare_inside, "--ref", "main", "--env", ENV, "--scope", "system"]

    def reconcile(self, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return self.atlas("reconcile", "--once", *self.target(), *extra, timeout=timeout)

    def status(self) -> dict:
        done = self.atlas("status", "--scope", "system", "--output", "json", check=True)
        return json.loads(done.stdout)

    def state(self, unit: str) -> str:
        s = self.host.unit_state(unit)
        return f"{s['ActiveState']}/{s['SubState']}"

    def pid(self, unit: str) -> int:
        return int(self.host.unit_state(unit)["MainPID"])

    def uid_of(self, pid: int) -> int:
        status = self.host.run("cat", f"/proc/{pid}/status").stdout
        line = next(x for x in status.splitlines() if x.startswith("Uid:"))
        return int(line.split()[1])

    def environ_of(self, pid: int) -> dict[str, str]:
        raw = self.host.run("cat", f"/proc/{pid}/environ").stdout
        return dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)

    def get(self, url: str, timeout: float = 5) -> tuple[int, str]:
        """GET ``url`` from inside the container (its own loopback)."""
        script = (
            "import sys, urllib.request, urllib.error\n"
            "try:\n"
            f"    r = urllib.request.urlopen({url!r}, timeout={timeout})\n"
            "    print(r.status); print(r.read().decode())\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(e.code); print(e.read().decode())\n"
            "except OSError as e:\n"
            "    print(0); print(e)\n"
        )
        out = self.host.run("/usr/bin/python3", "-c", script, timeout=timeout + 10).stdout
        code, _, body = out.partition("\n")
        return int(code), body
