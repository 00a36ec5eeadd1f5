"""React within a second to a new commit in a local repository: watchdog on its refs.

Watches ``refs/`` and ``packed-refs`` (and ``HEAD``) of a local git repository,
bare or not, and calls ``on_change`` (debounced) when any of them changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_WRITES = frozenset({"created", "modified", "moved", "deleted", "closed"})


def git_dir(repo: Path) -> Path | None:
    if (repo / ".git").is_dir():
        return repo / ".git"
    if (repo / "HEAD").is_file() and (repo / "refs").is_dir():
        return repo
    return None


class RefsWatcher:
    def __init__(self, repo: Path, on_change: Callable[[], None], debounce: float = 0.1) -> None:
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        directory = git_dir(repo)
        if directory is None:
            raise ValueError(f"{repo} is not a local git repository")
        self.directory = directory
        timer: list[threading.Timer] = []

        def fire() -> None:
            on_change()

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type not in _WRITES:  # reading refs (our own fetch) is no news
                    return
                path = str(getattr(event, "dest_path", "") or event.src_path)
                rel = path[len(str(directory)) + 1 :]
                if not (rel.startswith("refs") or rel in ("packed-refs", "HEAD")) or rel.endswith(
                    ".lock"
                ):
                    return
                if timer:
                    timer.pop().cancel()
                t = threading.Timer(debounce, fire)
                t.daemon = True
                timer.append(t)
                t.start()

        self.observer = Observer()
        handler = Handler()
        # refs/ (loose refs) recursively; the git dir itself only for packed-refs and HEAD,
        # so the thousands of folders under objects/ are never watched.
        self.observer.schedule(handler, str(directory), recursive=False)
        (directory / "refs").mkdir(exist_ok=True)
        self.observer.schedule(handler, str(directory / "refs"), recursive=True)

    def start(self) -> None:
        self.observer.daemon = True
        self.observer.start()

    def stop(self) -> None:
        self.observer.stop()
        self.observer.join(timeout=5)
