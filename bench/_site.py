"""Shared set-up for the reconciler benchmarks: a private systemd user manager and a
git repository of the example manifests with free ports (needs root, like the tests)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from atlas.usermanager import PrivateManager, why_unavailable  # noqa: E402


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


class BenchSite:
    def __init__(self) -> None:
        reason = why_unavailable()
        if reason:
            raise SystemExit(f"cannot run: {reason}")
        self.manager = PrivateManager()
        self.manager.start()
        self.root = Path(tempfile.mkdtemp(prefix="repos-", dir=self.manager.base))
        self.api, self.core, self.monitoring, self.reconciler = free_ports(4)
        self.bare = self.root / "origin.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.bare)], check=True)
        self.work = self.root / "work"
        shutil.copytree(PROJECT / "manifests", self.work)
        env = self.work / "environments/development/environment.yaml"
        text = env.read_text().replace("port: 18080", f"port: {self.api}")
        for old, new in (
            ("19101", self.core),
            ("19102", self.monitoring),
            ("19110", self.reconciler),
        ):
            text = text.replace(f"metricsPort: {old}", f"metricsPort: {new}")
        env.write_text(text.replace("http://127.0.0.1:18080", f"http://127.0.0.1:{self.api}"))
        git(self.work, "init", "-q", "-b", "main")
        git(self.work, "add", "-A")
        git(self.work, "commit", "-qm", "initial")
        git(self.work, "remote", "add", "origin", str(self.bare))
        git(self.work, "push", "-q", "origin", "main")

    def atlas(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "atlas", *args],
            env=self.manager.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def reconcile_args(self) -> list[str]:
        return [
            "--repo",
            str(self.bare),
            "--ref",
            "main",
            "--env",
            "development",
            "--scope",
            "user",
        ]

    def show(self, unit: str, *props: str) -> dict[str, str]:
        return self.manager.show(unit, *props)

    def close(self) -> None:
        self.manager.cleanup()
