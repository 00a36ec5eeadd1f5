"""Fetch: a repository URL or path and a ref → the manifests of one commit on disk.

Git repositories (remote URLs and local repositories alike) are mirrored into a bare
repository in the reconciler's cache with a forced, pruning fetch, so force-pushed
branches are followed. A ref is a branch, a tag or a commit SHA. Each commit's tree
is exported once into ``trees/<sha>`` (never modified afterwards), which is what
the later stages read and what a rollback re-reads.

A folder that is not a git repository (the bundled ``manifests/`` inside this
project, say) is read as it is; its revision is a hash of its files.

Two fetches of one repository into one cache (two ``--dry-run``s, which take no
reconcile lock, or a dry run beside a reconcile) take turns on that mirror's own
``flock`` (``<mirror folder>/.lock``); every folder is made beside its final place and
renamed into it, and one that another fetch renamed first is used as it is.

Errors: an unreachable or unreadable remote raises ``SourceUnavailable`` (temporary:
the current state keeps running); an unknown ref raises ``UsageError``.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import PermanentError, SourceUnavailable, UsageError
from reconciler.model import Revision

_GIT_TIMEOUT = 120


@dataclass(frozen=True)
class Checkout:
    root: Path  # the manifests root: the exported tree joined with --path
    revision: Revision


def _rename_or_use(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; if another process made ``final`` first, keep that."""
    try:
        os.replace(tmp, final)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def is_git_repository(path: Path) -> bool:
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def _looks_remote(repo: str) -> bool:
    return "://" in repo or (":" in repo and "@" in repo.split(":", 1)[0])


def directory_revision(root: Path) -> str:
    """A content hash of a plain folder's files (names and bytes)."""
    files: list[tuple[str, str]] = []  # (relative path, path)
    base = str(root)
    for folder, dirs, names in os.walk(base):
        dirs[:] = [d for d in dirs if d != ".git"]
        rel = os.path.relpath(folder, base)
        for name in names:
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                files.append((name if rel == "." else f"{rel}/{name}", path))
    h = hashlib.sha256()
    for rel_path, path in sorted(files):
        h.update(rel_path.encode() + b"\0")
        with open(path, "rb") as fh:
            h.update(hashlib.sha256(fh.read()).digest())
    return "dir:" + h.hexdigest()[:20]


def _safe_subpath(root: Path, subpath: str) -> Path:
    target = (root / subpath).resolve()
    try:
        target.relative_to(root.resolve())
    except ValueError as exc:
        raise UsageError(f"--path {subpath!r} points outside the repository") from exc
    return target


class GitMirror:
    """A bare mirror of one repository in the cache, plus exported trees by commit."""

    def __init__(self, url: str, cache_dir: Path) -> None:
        import git  # slow to import; only needed for git repositories

        self._git = git
        self.url = url
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        self.dir = cache_dir / key
        self.mirror = self.dir / "mirror.git"
        self.trees = self.dir / "trees"
        self._repo: Any = None

    def _error(self, exc: Exception) -> SourceUnavailable:
        detail = getattr(exc, "stderr", "") or str(exc)
        detail = " ".join(str(detail).split())
        return SourceUnavailable(f"cannot fetch {self.url}: {detail[:400]}")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this mirror's cache lock (fetches into it take turns; each is bounded
        by the git timeout, so a wait is too)."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise UsageError(f"cannot lock the git cache {self.dir}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def cached(url: str, cache_dir: Path) -> bool:
        """True if this cache has mirrored ``url`` before."""
        return (cache_dir / hashlib.sha256(url.encode()).hexdigest()[:16] / "mirror.git").is_dir()

    @property
    def repo(self) -> Any:
        if self._repo is None:
            if not self.mirror.exists():
                self.mirror.parent.mkdir(parents=True, exist_ok=True)
                tmp = Path(tempfile.mkdtemp(prefix=".mirror-", dir=self.dir))
                repo = self._git.Repo.init(tmp, bare=True)
                repo.git.remote("add", "origin", self.url)
                _rename_or_use(tmp, self.mirror)
            self._repo = self._git.Repo(self.mirror)
        return self._repo

    def fetch(self) -> None:
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "/bin/true"}
        try:
            self.repo.git.fetch(
                "--prune",
                "--force",
                "--no-tags",
                "origin",
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
                env=env,
                kill_after_timeout=_GIT_TIMEOUT,
            )
            head = self.repo.git.ls_remote(
                "--symref", "origin", "HEAD", env=env, kill_after_timeout=_GIT_TIMEOUT
            )
        except self._git.GitCommandError as exc:
            raise self._error(exc) from exc
        for line in head.splitlines():
            if line.startswith("ref: ") and line.endswith("\tHEAD"):
                self.repo.git.symbolic_ref("HEAD", line[5:].split("\t")[0])

    def resolve(self, ref: str | None) -> Revision:
        candidates = [f"refs/heads/{ref}", f"refs/tags/{ref}", ref] if ref else ["HEAD"]
        for candidate in candidates:
            try:
                commit = self.repo.commit(candidate)
            except (self._git.BadName, ValueError, self._git.GitCommandError):
                continue
            subject = str(commit.message).strip().splitlines()[0] if commit.message else ""
            return Revision(commit.hexsha, ref or "HEAD", self.url, subject[:200])
        raise UsageError(f"{self.url}: no branch, tag or commit named {ref!r}")

    def export(self, sha: str) -> Path:
        """The commit's tree as files in ``trees/<sha>`` (exported once, atomically)."""
        final = self.trees / sha
        if final.is_dir():
            return final
        self.trees.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        try:
            self.repo.archive(buf, treeish=sha, format="tar")
        except self._git.GitCommandError as exc:
            raise self._error(exc) from exc
        buf.seek(0)
        tmp = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=self.trees))
        try:
            with tarfile.open(fileobj=buf) as tar:
                extract_tree(tar, tmp)
            _rename_or_use(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final


class UnsafeTree(PermanentError):
    """A revision whose files would land outside its tree (a link pointing out)."""


def extract_tree(tar: tarfile.TarFile, dest: Path, *, own_filter: bool | None = None) -> None:
    """Extract a ``git archive`` into ``dest``, refusing what would land outside it.

    Python's ``filter="data"`` does that from 3.11.4 (and 3.12); Debian 12's 3.11.2
    lacks it, so there the same rules are checked here: no absolute or ``..`` names,
    no links whose target leaves ``dest``, only files, folders and symlinks.
    """
    if own_filter is None:
        own_filter = not hasattr(tarfile, "data_filter")
    if not own_filter:
        try:
            tar.extractall(dest, filter="data")
        except tarfile.FilterError as exc:
            raise UnsafeTree(f"revision archive: {exc}") from exc
        return
    root = dest.resolve()
    members = tar.getmembers()
    for m in members:
        _refuse_escape(m, root)
    tar.extractall(dest, members=members)  # noqa: S202 - every member was checked above


def _refuse_escape(m: tarfile.TarInfo, root: Path) -> None:
    where = (root / m.name).resolve()
    if m.name.startswith("/") or (where != root and root not in where.parents):
        raise UnsafeTree(f"revision archive: {m.name!r} would land outside the tree")
    if not (m.isfile() or m.isdir() or m.issym()):
        raise UnsafeTree(f"revision archive: {m.name!r} is not a file, folder or link")
    if m.issym():
        target = (where.parent / m.linkname).resolve()
        if m.linkname.startswith("/") or (target != root and root not in target.parents):
            raise UnsafeTree(
                f"revision archive: the link {m.name!r} points outside the tree ({m.linkname})"
            )
    m.mode &= 0o755 if m.isdir() or m.mode & 0o111 else 0o644


def _snapshot_dir(root: Path, sha: str, cache_dir: Path) -> Path:
    """A copy of a plain folder's revision in the cache, so it can be re-read later."""
    final = cache_dir / "dirs" / sha.removeprefix("dir:")
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".snapshot-", dir=final.parent))
    try:
        shutil.copytree(root, tmp / "tree", symlinks=True, ignore=shutil.ignore_patterns(".git"))
        _rename_or_use(tmp / "tree", final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def checkout(
    repo: str,
    ref: str | None,
    subpath: str,
    cache_dir: Path,
    fetch: bool = True,
    snapshot: bool = False,
) -> Checkout:
    """Fetch ``repo`` and return the manifests of ``ref`` (see module docstring).

    With ``snapshot``, a plain folder is copied into the cache first, so the revision
    stays readable (for a rollback) after the folder changes.
    """
    local = Path(repo)
    if not _looks_remote(repo):
        if not local.exists():
            if GitMirror.cached(str(local.absolute()), cache_dir):
                raise SourceUnavailable(f"cannot fetch {repo}: the repository is gone")
            raise UsageError(f"repository {repo!r} does not exist")
        if local.is_dir() and not is_git_repository(local):
            if ref:
                raise UsageError(
                    f"{repo} is a plain folder, not a git repository: --ref does not apply"
                )
            root = _safe_subpath(local, subpath)
            revision = Revision(directory_revision(root), "", str(local.resolve()))
            if snapshot:
                root = _snapshot_dir(root, revision.sha, cache_dir)
            return Checkout(root, revision)
        repo = str(local.resolve())
    mirror = GitMirror(repo, cache_dir)
    with mirror.locked():
        if fetch:
            mirror.fetch()
        revision = mirror.resolve(ref)
        tree = mirror.export(revision.sha)
    return Checkout(_safe_subpath(tree, subpath), revision)


def tree_of(repo: str, revision: Revision, subpath: str, cache_dir: Path) -> Path:
    """The manifests of an earlier revision, from the cache (for rollbacks)."""
    if revision.sha.startswith("dir:"):
        tree = cache_dir / "dirs" / revision.sha.removeprefix("dir:")
        if not tree.is_dir():
            raise SourceUnavailable(f"revision {revision.sha} is no longer in the cache")
        return tree
    local = Path(repo)
    url = str(local.resolve()) if not _looks_remote(repo) and local.exists() else repo
    mirror = GitMirror(url, cache_dir)
    with mirror.locked():
        return _safe_subpath(mirror.export(revision.sha), subpath)


def prune_cache(cache_dir: Path, keep: set[str]) -> int:
    """Remove exported trees and folder snapshots of revisions not in ``keep``.

    Trees of git commits can be exported again from the mirror; snapshots of plain
    folders cannot, so ``keep`` should hold every revision a rollback may return to.
    Returns how many were removed.
    """
    removed = 0
    folders = [d / "trees" for d in cache_dir.iterdir() if d.is_dir()] if cache_dir.is_dir() else []
    folders.append(cache_dir / "dirs")
    wanted = {sha.removeprefix("dir:") for sha in keep}
    for folder in folders:
        if not folder.is_dir():
            continue
        for tree in folder.iterdir():
            if tree.name not in wanted and not tree.name.startswith("."):
                shutil.rmtree(tree, ignore_errors=True)
                removed += 1
    return removed
