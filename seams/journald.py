"""The journal's native protocol: one structured entry per datagram to journald.

An entry is a list of ``(FIELD, value)`` pairs (a field may repeat; journalctl shows
it as a list). ``encode`` writes each pair as ``FIELD=value\\n``, or, for a value
holding a newline, as ``FIELD\\n`` + its length (64-bit little-endian) + the value +
``\\n``. ``JournalSocket.send`` sends it to journald's socket
(``/run/systemd/journal/socket``, the same socket for services of a user manager);
an entry too large for one datagram goes in a sealed memfd whose descriptor is
passed instead (as sd_journal_sendv does). Field names are upper-case letters,
digits and underscores, not starting with an underscore (``field_name`` makes one).

``send`` raises ``OSError`` when no journald answers; the caller decides what to do
instead (see ``atlas.alerting.channels.log``).
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import re
import socket
import struct
from collections.abc import Sequence
from pathlib import Path

JOURNAL_SOCKET = Path("/run/systemd/journal/socket")
Entry = Sequence[tuple[str, str]]
_NAME = re.compile(r"^[A-Z0-9][A-Z0-9_]{0,63}$")
_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL


def field_name(text: str) -> str:
    """A valid journal field name made of ``text``: upper case, other characters ``_``."""
    name = re.sub(r"[^A-Z0-9_]", "_", text.upper()).lstrip("_")[:64]
    return name or "X"


def encode(entry: Entry) -> bytes:
    """The datagram of ``entry``; ValueError for an invalid field name."""
    out = bytearray()
    for name, value in entry:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a journal field name (A-Z, 0-9, _)")
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name.encode() + b"=" + data + b"\n"
    return bytes(out)


class JournalSocket:
    """Sends entries to the journald listening on ``path``."""

    def __init__(self, path: Path = JOURNAL_SOCKET) -> None:
        self.path = path

    def available(self) -> bool:
        return self.path.is_socket()

    def send(self, entry: Entry) -> None:
        data = encode(entry)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.sendto(data, str(self.path))
            except OSError as exc:
                if exc.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                    raise
                self._send_memfd(sock, data)

    def _send_memfd(self, sock: socket.socket, data: bytes) -> None:
        fd = os.memfd_create("atlas-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
            sock.sendmsg([], rights, 0, str(self.path))
        finally:
            os.close(fd)
