"""A site for end-to-end tests and benchmarks: a manifests repository (a bare origin
and a working clone) of the example manifests with free ports, and a systemd user
manager to converge with the real ``atlas`` command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from atlas.usermanager import PrivateManager
from tests.support.examples import EXAMPLE, PROJECT
from tests.support.git import commit, git
from tests.support.net import free_ports


class Site:
    """A manifests repository (bare origin + working clone) and a host to converge."""

    def __init__(self, manager: PrivateManager, root: Path) -> None:
        self.manager = manager
        self.api, self.core, self.monitoring, self.reconciler = free_ports(4)
        self.bare = root / "origin.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.bare)], check=True)
        self.work = root / "work"
        shutil.copytree(EXAMPLE, self.work)
        env = self.work / "environments/development/environment.yaml"
        text = env.read_text().replace("port: 18080", f"port: {self.api}")
        text = text.replace("metricsPort: 19101", f"metricsPort: {self.core}")
        text = text.replace("metricsPort: 19102", f"metricsPort: {self.monitoring}")
        text = text.replace("metricsPort: 19110", f"metricsPort: {self.reconciler}")
        text = text.replace("http://127.0.0.1:18080", f"http://127.0.0.1:{self.api}")
        env.write_text(text)
        git(self.work, "init", "-q", "-b", "main")
        git(self.work, "add", "-A")
        git(self.work, "commit", "-qm", "initial")
        git(self.work, "remote", "add", "origin", str(self.bare))
        self.push()

    def push(self, *extra: str) -> None:
        git(self.work, "push", "-q", *extra, "origin", "main")

    def change(self, path: str, old: str, new: str) -> str:
        sha = commit(self.work, path, old, new)
        self.push()
        return sha

    def atlas(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "atlas", *args],
            env={**self.manager.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def watch(
        self, *extra: str, repo: str | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """``atlas reconcile --watch`` (hourly polls, metrics on the reconciler port),
        returned once its /healthz answers."""
        import time

        import httpx

        proc = subprocess.Popen(
            [sys.executable, "-m", "atlas", "reconcile", "--watch", "--repo", repo or str(self.bare),
             "--ref", "main", "--env", "development", "--scope", "user", "--interval", "1h",
             "--metrics-addr", f"127.0.0.1:{self.reconciler}", *extra],
            env={**self.manager.env, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{self.reconciler}/healthz", timeout=2).status_code
                    == 200
                ):
                    return proc
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise AssertionError(f"the watch loop never answered: {proc.communicate()[0]}")
            time.sleep(0.2)

    def reconcile_args(self, repo: str | None = None) -> list[str]:
        """Where ``atlas reconcile`` finds this site: its origin (or ``repo``), main, dev."""
        return [
            "--repo", repo or str(self.bare), "--ref", "main", "--env", "development",
            "--scope", "user",
        ]  # fmt: skip

    def reconcile(
        self, *extra: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return self.atlas("reconcile", "--once", *self.reconcile_args(), *extra, env=env)

    def reconcile_killed_after(self, n: int) -> subprocess.CompletedProcess[str]:
        """``atlas reconcile --once`` SIGKILLed right after its ``n``th action."""
        return subprocess.run(
            [sys.executable, "-m", "tests.support.crash_driver", str(n), "reconcile", "--once",
             *self.reconcile_args()],
            env=self.manager.env, cwd=PROJECT, capture_output=True, text=True, timeout=180,
            check=False,
        )  # fmt: skip

    def pid(self, unit: str) -> int:
        return int(self.manager.show(unit, "MainPID")["MainPID"])

    def state(self, unit: str) -> str:
        props = self.manager.show(unit, "ActiveState", "SubState")
        return f"{props['ActiveState']}/{props['SubState']}"

    def status(self) -> dict:
        done = self.atlas("status", "--scope", "user", "--output", "json")
        return json.loads(done.stdout)

    @property
    def units_dir(self) -> Path:
        return self.manager.config_home / "systemd/user"

    @property
    def config_dir(self) -> Path:
        return self.manager.config_home / "atlas"
