"""The reconcile lock names its holder, even one that took it a moment ago."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest

from reconciler.errors import LockBusy
from reconciler.host.lock import reconcile_lock


def test_a_holder_that_has_not_written_its_pid_yet_is_still_named(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # new and empty, as a first holder has it
    fcntl.flock(fd, fcntl.LOCK_EX)
    late = threading.Timer(0.03, lambda: os.pwrite(fd, b"4242\n", 0))
    late.start()
    try:
        with pytest.raises(LockBusy, match=r"another reconcile \(PID 4242\)"):
            with reconcile_lock(path):
                pass
    finally:
        late.join()
        os.close(fd)


def test_the_holder_writes_its_pid_and_the_next_one_overwrites_it(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    path.write_text("123456789012345\n")  # a longer leftover
    with reconcile_lock(path):
        assert path.read_text().strip() == str(os.getpid())
        with pytest.raises(LockBusy, match=rf"PID {os.getpid()}\)"):
            with reconcile_lock(path):
                pass
