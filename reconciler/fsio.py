"""Writing files so that a crash leaves the old file or the new one, never half of each."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

TEMP_PREFIX = ".atlas-tmp-"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int, parents_mode: int | None = None) -> None:
    """Replace ``path`` by ``data`` with ``mode``: a temp file in the same folder (created
    0600, so nobody reads it half-written), fsync, rename over the target, fsync the folder.

    Missing parent folders are created (with ``parents_mode`` when given). Raises OSError.
    """
    if not path.parent.exists():
        if parents_mode is None:
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(mode=parents_mode, parents=True, exist_ok=True)
    tmp = path.parent / f"{TEMP_PREFIX}{path.name}.{uuid.uuid4().hex[:8]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
