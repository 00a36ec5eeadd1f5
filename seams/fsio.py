"""Writing files so that a crash leaves the old file or the new one, never half of each.

``write_atomic`` is the one way Atlas replaces a file: a temp file in the same folder
(created 0600, so nobody reads it half-written), fsync, rename over the target, fsync
the folder. Temp files carry ``TEMP_PREFIX``, so a run killed mid-write leaves strays
its successor can recognise and remove.
"""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

TEMP_PREFIX = ".atlas-tmp-"


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _mode_for(path: Path, mode: int | None) -> int:
    if mode is not None:
        return mode
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def write_atomic(
    path: Path,
    data: bytes,
    mode: int | None,
    parents_mode: int | None = None,
    *,
    create_parents: bool = True,
) -> None:
    """Replace ``path`` by ``data``.

    ``mode`` None keeps the mode of the file being replaced (a new file gets 0666
    minus the umask). Missing parent folders are created (with ``parents_mode`` when
    given) unless ``create_parents`` is false. Raises OSError.
    """
    if not path.parent.exists():
        if not create_parents:
            raise FileNotFoundError(2, "No such file or directory", str(path.parent))
        if parents_mode is None:
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(mode=parents_mode, parents=True, exist_ok=True)
    final_mode = _mode_for(path, mode)
    tmp = path.parent / f"{TEMP_PREFIX}{path.name}.{uuid.uuid4().hex[:8]}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), final_mode)
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
