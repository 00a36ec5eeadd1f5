"""Fill a content database through the worker's own store (the real writer)."""

from __future__ import annotations

from pathlib import Path

from atlas.core.model import Item, Job, JobResult
from atlas.core.scheduler import Schedule
from atlas.core.settings import SourceSettings
from atlas.core.store import Store, open_store


def rss_source(name: str, url: str | None = None) -> SourceSettings:
    return SourceSettings(
        name,
        "rss",
        None,
        True,
        300.0,
        url or f"http://{name}.example.invalid/feed",
        None,
        None,
        None,
        None,
    )


def seed(db: Path, batches: dict[str, list[Item]], now: float = 1_700_000_000.0) -> Store:
    """Store each source's items as one fetched batch; returns the open store."""
    store = open_store(db, 5)
    sources = [rss_source(name) for name in batches]
    store.sync_sources(sources, [s.name for s in sources], now)
    for s in sources:
        store.apply(JobResult(Job(s), "ok", now, 0.1, items=tuple(batches[s.name])), Schedule())
    return store


def items(prefix: str, n: int, start: float = 1_700_000_000.0, step: float = 60.0) -> list[Item]:
    return [
        Item(
            title=f"{prefix} title {i}",
            text=f"{prefix} text number {i} about lighthouses",
            guid=f"{prefix}-{i}",
            url=f"http://example.invalid/{prefix}/{i}",
            published_at=start + i * step,
        )
        for i in range(n)
    ]
