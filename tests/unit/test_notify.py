"""sd_notify never blocks the service: a manager that does not read its socket costs
dropped messages, not a stuck loop (seams.notify)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from seams.notify import Notifier


def test_a_full_notify_socket_drops_messages_instead_of_blocking(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    manager = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    manager.bind(str(path))  # and never reads: its queue fills up
    try:
        notifier = Notifier(str(path))
        sent: list[bool] = []
        worker = threading.Thread(
            target=lambda: sent.extend(notifier.watchdog() for _ in range(5000))
        )
        worker.start()
        worker.join(timeout=10)
        assert not worker.is_alive(), "a ping blocked on the full socket"
        assert sent[0] is True and sent[-1] is False, "the first went out, the overflow dropped"
        assert manager.recv(64) == b"WATCHDOG=1"
    finally:
        manager.close()
