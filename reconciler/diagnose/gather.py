"""The facts ``atlas doctor`` judges, read through the reconciler's seams.

Everything here only reads: the state database, the unit and config folders, the
content database (opened read-only), ``systemctl show``/``journalctl`` through the
Runtime, ``git ls-remote``, ``timedatectl`` and the kernel's table of listening
sockets. Each reader turns its failure into a fact ("unreachable: …") instead of
raising, so one broken part never hides the others' findings.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.diagnose import checks
from reconciler.host.paths import HostLayout
from reconciler.host.runtime import Runtime

JOURNAL_LINES = 5
_SHA = re.compile(r"^[0-9a-f]{40}$")
_USERINFO = re.compile(r"([a-z][a-z0-9+.-]*://)[^/\s@]+@", re.IGNORECASE)


@dataclass(frozen=True)
class Probes:
    """The host's answers; ``compose`` wires the real ones, tests their own."""

    manager: checks.ManagerFacts
    runtime: Runtime | None  # None: the manager cannot be asked
    clock_synchronised: Callable[[], bool | None]
    listeners: Callable[[], dict[int, dict[int, str]]]  # port → {pid (0: unknown): name}
    process_tree: Callable[[int], frozenset[int]]  # a MainPID and its descendants
    ls_remote: Callable[[str], tuple[dict[str, str], str]]  # ref → sha, error


def redact_url(text: str) -> str:
    """``text`` with no user or token of a URL left in it (https://user:token@host →
    https://host), whether it is a URL or git's message quoting one."""
    return _USERINFO.sub(r"\1", text)


def repo_facts(
    target: Mapping[str, str | None], ls_remote: Callable[[str], tuple[dict[str, str], str]]
) -> checks.RepoFacts:
    repo, ref = target.get("repo"), target.get("ref")
    if not repo:
        return checks.RepoFacts(None, None)
    shown = redact_url(repo)
    refs, error = ls_remote(repo)
    if error:
        return checks.RepoFacts(shown, ref, reachable=False, error=redact_url(error))
    if ref and _SHA.match(ref):
        return checks.RepoFacts(shown, ref, reachable=True, resolved=ref)
    wanted = [f"refs/heads/{ref}", f"refs/tags/{ref}", ref] if ref else ["HEAD"]
    resolved = next((refs[w] for w in wanted if w in refs), None)
    return checks.RepoFacts(shown, ref, reachable=True, resolved=resolved)


def git_ls_remote(repo: str) -> tuple[dict[str, str], str]:
    """(ref → sha, "") or ({}, why not); never prompts for credentials."""
    env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true", "PATH": "/usr/bin:/bin"}
    try:
        done = subprocess.run(
            ["git", "ls-remote", "--", repo],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {}, str(exc)
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        return {}, " ".join(lines[-2:])[:300] or f"git exited {done.returncode}"
    refs = {}
    for line in done.stdout.splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    return refs, ""


def _config(layout: HostLayout, name: str) -> dict[str, object] | None:
    path = layout.on_disk(layout.config_dir) / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def database_facts(layout: HostLayout) -> checks.DatabaseFacts:
    core = _config(layout, "core")
    db = core.get("database") if core else None
    if not isinstance(db, dict) or not isinstance(db.get("path"), str):
        return checks.DatabaseFacts(None)
    path = layout.on_disk(db["path"])
    if not path.is_file():
        return checks.DatabaseFacts(db["path"])
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return checks.DatabaseFacts(db["path"], True, size, error=str(exc))
    return checks.DatabaseFacts(db["path"], True, size, rows)


def backup_destination(layout: HostLayout) -> Path | None:
    """Where the services' backup job writes (None: no BackupPolicy), as seen from here."""
    services = _config(layout, "services")
    backup = services.get("backup") if services else None
    if not isinstance(backup, dict) or not isinstance(backup.get("destination"), str):
        return None
    return layout.on_disk(backup["destination"])


def disk_facts(layout: HostLayout) -> checks.DiskFacts | None:
    path = layout.on_disk(layout.data_dir)
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return None
    return checks.DiskFacts(str(layout.data_dir), usage.total, usage.free)


def key_facts(paths: Sequence[tuple[Path, bool]]) -> list[checks.KeyFacts]:
    from reconciler.errors import SecretsError
    from reconciler.secrets.keys import check_key_file_mode

    out = []
    for path, required in paths:
        if not path.exists():
            out.append(checks.KeyFacts(str(path), False, required=required))
            continue
        try:
            check_key_file_mode(path)
            error = ""
        except SecretsError as exc:
            error = str(exc)
        out.append(checks.KeyFacts(str(path), True, error, required))
    return out


def timedatectl_synchronised() -> bool | None:
    try:
        done = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    answer = done.stdout.strip()
    if done.returncode != 0 or answer not in ("yes", "no"):
        return None
    return answer == "yes"


def psutil_listeners() -> dict[int, dict[int, str]]:
    """Listening TCP ports → {pid: process name}; pid 0 when this user may not see it."""
    import psutil

    out: dict[int, dict[int, str]] = {}
    try:
        conns = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return out
    for c in conns:
        if c.status != psutil.CONN_LISTEN or not c.laddr:
            continue
        pid = c.pid or 0
        try:
            name = psutil.Process(pid).name() if pid else "a process of another user"
        except psutil.Error:
            name = "a process that has exited"
        out.setdefault(c.laddr.port, {})[pid] = name
    return out


def psutil_tree(pid: int) -> frozenset[int]:
    import psutil

    if pid <= 0:
        return frozenset()
    try:
        proc = psutil.Process(pid)
        return frozenset([pid, *(c.pid for c in proc.children(recursive=True))])
    except psutil.Error:
        return frozenset()
