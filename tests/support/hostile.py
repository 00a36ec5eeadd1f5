"""Hostile HTTP servers on 127.0.0.1 for the fetcher's defences: one that trickles its
response headers a byte at a time (a read timeout never fires), and compression
bombs (gzip of gzip of many zeros) to serve through ``FeedServer``."""

from __future__ import annotations

import socket
import threading
import zlib
from typing import Any

ZEROS_STEP = 1 << 20


def gzipped(data: bytes) -> bytes:
    obj = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return obj.compress(data) + obj.flush()


def gzip_bomb(decoded_bytes: int, layers: int = 2) -> bytes:
    """``layers`` of gzip around ``decoded_bytes`` zeros, built a MiB at a time (a
    2 GiB bomb never sits in memory): 2 GiB in two layers is about 3.5 KB."""
    obj = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    block = bytes(ZEROS_STEP)
    left = decoded_bytes
    while left > 0:
        parts.append(obj.compress(block[: min(left, ZEROS_STEP)]))
        left -= ZEROS_STEP
    parts.append(obj.flush())
    body = b"".join(parts)
    for _ in range(layers - 1):
        body = gzipped(body)
    return body


class TrickleServer:
    """Answers every request with a status line, then one header byte every
    ``every_s`` for up to ``for_s`` seconds, then hangs up. Counts connections."""

    def __init__(self, every_s: float = 0.1, for_s: float = 10.0) -> None:
        self.every_s = every_s
        self.for_s = for_s
        self.connections = 0
        self.closed = threading.Event()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.thread = threading.Thread(target=self._accept, daemon=True, name="trickle")

    def url(self, path: str = "/feed") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._trickle, args=(conn,), daemon=True).start()

    def _trickle(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                for _ in range(int(self.for_s / self.every_s)):
                    if self.closed.wait(self.every_s):
                        return
                    conn.sendall(b"a")
            except OSError:
                return  # the client gave up: that is the point

    def __enter__(self) -> TrickleServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.closed.set()
        self.sock.close()
