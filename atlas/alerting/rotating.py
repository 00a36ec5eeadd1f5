"""An append-only file of lines, rotated by size (``alerts.jsonl`` → ``.1`` → ``.2``…).

``RotatingFile.append`` writes one line with a single ``write`` under an exclusive
``flock`` (the agent and ``atlas alerts test`` may append at once), fsyncs it, and
first rotates when the line would take the file over ``max_bytes``: ``keep`` old
files are kept, the oldest dropped. A write that fails half-way (a full disk) is cut
back off, so the file never holds half a line. Errors are ``OSError``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
_TRIES = 5  # reopen when another process rotated the file between open and lock


class RotatingFile:
    def __init__(self, path: Path, max_bytes: int, keep: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.keep = keep

    def append(self, line: str) -> None:
        data = (line.rstrip("\n") + "\n").encode()
        for _ in range(_TRIES):
            fd = os.open(self.path, _FLAGS, 0o640)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                st = self._owned_like_folder(fd)
                if not self._is_current(st):
                    continue
                if st.st_size > 0 and st.st_size + len(data) > self.max_bytes:
                    self._rotate()
                    continue
                _write_whole(fd, data, st.st_size)
                return
            finally:
                os.close(fd)
        raise OSError(f"{self.path}: kept being rotated by another process")

    def rotated(self) -> list[Path]:
        """The old files, newest first."""
        return [p for i in range(1, self.keep + 1) if (p := self._old(i)).exists()]

    def _owned_like_folder(self, fd: int) -> os.stat_result:
        """Root (``atlas alerts test``) gives a file it made to the folder's owner, the
        agent's user, which could not append to it otherwise."""
        st = os.fstat(fd)
        if os.geteuid() == 0 and stat.S_ISREG(st.st_mode):
            folder = os.stat(self.path.parent)
            if (st.st_uid, st.st_gid) != (folder.st_uid, folder.st_gid):
                os.fchown(fd, folder.st_uid, folder.st_gid)
        return st

    def _old(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def _is_current(self, st: os.stat_result) -> bool:
        try:
            now = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino)

    def _rotate(self) -> None:
        if self.keep < 1:
            os.unlink(self.path)
            return
        for i in range(self.keep - 1, 0, -1):
            if self._old(i).exists():
                os.replace(self._old(i), self._old(i + 1))
        os.replace(self.path, self._old(1))


def _write_whole(fd: int, data: bytes, start: int) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):  # a device such as /dev/full cannot be cut
            os.ftruncate(fd, start)
        raise
