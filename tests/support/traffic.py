"""A client on 127.0.0.1 sending requests all the while, counting what failed: a 5xx,
a reset, a refused connection, a timeout. A new connection per request, so every
request goes through the kernel's SO_REUSEPORT choice of a listener."""

from __future__ import annotations

import http.client
import threading
import time
from types import TracebackType


class Traffic:
    def __init__(self, port: int, path: str = "/v1/items?limit=1", pause: float = 0.01) -> None:
        self.port, self.path, self.pause = port, path, pause
        self.ok = 0
        self.failed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def _one(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", self.path, headers={"Connection": "close"})
            reply = conn.getresponse()
            reply.read()
        except (OSError, http.client.HTTPException) as exc:
            self.failed.append(f"{time.strftime('%H:%M:%S')} {type(exc).__name__}: {exc}")
            return
        finally:
            conn.close()
        if reply.status >= 500:
            self.failed.append(f"{time.strftime('%H:%M:%S')} HTTP {reply.status}")
        else:
            self.ok += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self._one()
            time.sleep(self.pause)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
