"""Real git repositories for tests: a copy of the example manifests committed, a bare
origin it pushes to, edits committed one at a time."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.examples import EXAMPLE

IDENTITY = ("-c", "user.name=Ops", "-c", "user.email=ops@example.com", "-c", "commit.gpgsign=false")


def git(repo: Path, *args: str) -> str:
    """``git -C repo ARGS``'s output, stripped; raises when git fails."""
    return subprocess.run(
        ["git", "-C", str(repo), *IDENTITY, *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def commit(repo: Path, path: str, old: str, new: str, message: str = "change") -> str:
    """Replace ``old`` by ``new`` in ``path`` and commit; returns the new SHA."""
    file = repo / path
    text = file.read_text()
    assert old in text, f"{old!r} not in {path}"
    file.write_text(text.replace(old, new, 1))
    git(repo, "commit", "-qam", message)
    return git(repo, "rev-parse", "HEAD")


def example_repo(path: Path, message: str = "initial") -> Path:
    """A git work tree at ``path``: the example manifests, one commit on main."""
    shutil.copytree(EXAMPLE, path)
    git(path, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Ops"), ("user.email", "ops@example.com")):
        git(path, "config", key, value)  # for git commands run without IDENTITY too
    git(path, "config", "commit.gpgsign", "false")
    git(path, "add", "-A")
    git(path, "commit", "-qm", message)
    return path


def bare_origin(path: Path, work: Path) -> Path:
    """A bare repository at ``path`` that ``work`` pushes its main branch to."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    git(work, "remote", "add", "origin", str(path))
    git(work, "push", "-q", "origin", "main")
    return path


class GitRepo:
    """A git work tree whose root is a copy of the example manifests."""

    def __init__(self, path: Path) -> None:
        self.path = example_repo(path, "example manifests")

    def git(self, *args: str) -> str:
        return git(self.path, *args)

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def branch(self, name: str, start: str = "main") -> None:
        self.git("checkout", "-q", "-b", name, start)

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.path / rel
        text = path.read_text()
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new))
