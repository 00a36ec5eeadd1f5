"""Values that flow through ingestion: items, HTTP responses, jobs and their results."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from atlas.core.settings import SourceSettings
from atlas.errors import AtlasError


@dataclass(frozen=True)
class Item:
    """One piece of content, as parsed; not yet stored."""

    title: str
    text: str
    guid: str | None = None
    url: str | None = None
    author: str | None = None
    published_at: float | None = None

    @property
    def dedupe_key(self) -> str:
        """Identity within its source: the GUID, else the URL, else a hash of the content."""
        if self.guid:
            return "guid:" + self.guid
        if self.url:
            return "url:" + self.url
        return "hash:" + self.content_hash

    @property
    def content_hash(self) -> str:
        h = hashlib.sha256()
        for part in (self.title, self.text, self.url or "", self.author or ""):
            h.update(part.encode("utf-8", "surrogatepass"))
            h.update(b"\x00")
        h.update(repr(self.published_at).encode())
        return h.hexdigest()[:32]


@dataclass(frozen=True)
class Response:
    """A successful (2xx) or not-modified (304) answer, body read within the limits."""

    status: int
    url: str  # after redirects
    body: bytes = field(repr=False)
    headers: Mapping[str, str]  # lower-case names
    elapsed_s: float

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass(frozen=True)
class Job:
    """A due source and what was stored about its last successful fetch."""

    source: SourceSettings
    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None
    lease_token: int | None = None  # the fencing token of this instance's claim


Status = Literal["ok", "not_modified", "unchanged", "failed", "cancelled"]


@dataclass(frozen=True)
class JobResult:
    """What one fetch of one source produced: stored in one write transaction."""

    job: Job
    status: Status
    finished_at: float  # wall clock
    duration_s: float
    items: tuple[Item, ...] = ()
    http_status: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_sha256: str | None = None
    freshness_s: float | None = None  # how long the response said it stays fresh
    error: AtlasError | None = None
    retry_after: float | None = None  # seconds, from Retry-After or an open circuit
    attempts: int = 1
    skipped: int = 0  # feed entries that carried nothing (or were cut off)

    @property
    def source(self) -> SourceSettings:
        return self.job.source
