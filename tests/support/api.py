"""The HTTP API served by a real uvicorn on 127.0.0.1, in a thread, over a seeded database."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx

from atlas.api import settings as api_settings
from atlas.api.app import create_app
from atlas.api.connections import Guard
from atlas.api.server import GuardedServer, bind, uvicorn_config
from tests.support.feeds import api_config

PAGE = 10


class Api:
    def __init__(self, tmp_path: Path, page_size: int = PAGE, guard: Guard | None = None) -> None:
        self.db = tmp_path / "atlas.db"
        self.settings = api_settings.from_dict(
            api_config(self.db, 1, page_size), tmp_path / "api.json"
        )
        self.sock = bind("127.0.0.1", 0)
        self.port = self.sock.getsockname()[1]
        app = create_app(self.settings)
        self.guard = guard if guard is not None else Guard()
        self.server = GuardedServer(uvicorn_config(app, self.guard), self.guard)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params)

    def close(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)
