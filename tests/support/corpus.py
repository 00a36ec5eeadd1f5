"""The feed corpus (``tests/corpus/feeds/``): real-world edge cases, each served
with its Content-Type from MANIFEST.json, and the comparison of what Atlas stored
with what bare feedparser finds in the same bytes.

An entry "has content" when feedparser gives it a non-blank id, link, title,
summary or content. Atlas matches a feed when it stored exactly those entries
(after its in-document dedupe: a repeated GUID or link keeps the first), each
with feedparser's id and link, and every word of feedparser's title and text —
tags and scripts stripped crudely, entities decoded — in the stored title and
text. A feed feedparser cannot read must leave a clear error and no items.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import feedparser

CORPUS = Path(__file__).resolve().parent.parent / "corpus" / "feeds"
_DROP = re.compile(r"<(script|style|noscript|iframe)\b.*?</\1\s*>", re.DOTALL | re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Case:
    file: str
    content_type: str
    note: str
    failure: str | None = None  # the error Atlas must record (nothing stored)
    mismatch: str | None = None  # why Atlas differs from feedparser here, on purpose

    @property
    def source(self) -> str:
        """A source name (``[a-z0-9-]``) for the file."""
        return re.sub(r"[^a-z0-9]+", "-", self.file.lower()).strip("-")[:63]

    @property
    def body(self) -> bytes:
        return (CORPUS / self.file).read_bytes()


def cases() -> list[Case]:
    manifest = json.loads((CORPUS / "MANIFEST.json").read_text())
    return [
        Case(name, m["contentType"], m["note"], m.get("failure"), m.get("mismatch"))
        for name, m in sorted(manifest.items())
    ]


@dataclass(frozen=True)
class Expected:
    guid: str | None
    link: str | None
    words: frozenset[str]


def _words(*texts: tuple[str, Any]) -> frozenset[str]:
    """Words of (value, detail) pairs: markup stripped unless declared plain text."""
    out: set[str] = set()
    for value, detail in texts:
        plain = value
        if (detail or {}).get("type") != "text/plain":
            plain = html.unescape(_TAG.sub(" ", _DROP.sub(" ", value)))
        out.update(w.lower() for w in _WORD.findall(plain))
    return frozenset(out)


def _stored_words(title: str, text: str) -> frozenset[str]:
    """Words of a stored item: plain text already, so nothing is stripped."""
    return frozenset(w.lower() for w in _WORD.findall(f"{title} {text}"))


def _blank(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def expected(case: Case, url: str) -> list[Expected]:
    """feedparser's entries with content, as Atlas should store them."""
    headers = {"content-type": case.content_type, "content-location": url}
    parsed = feedparser.parse(case.body, response_headers=headers)
    out: list[Expected] = []
    seen: set[Any] = set()
    for entry in parsed.entries:
        guid, link, title = (_blank(entry.get(k)) for k in ("id", "link", "title"))
        content = next((c for c in entry.get("content") or [] if _blank(c.get("value"))), None)
        text, detail = (
            (_blank(content.get("value")), content)
            if content is not None
            else (_blank(entry.get("summary")), entry.get("summary_detail"))
        )
        if not (guid or link or title or text):
            continue
        words = _words((title, entry.get("title_detail")), (text, detail))
        key = ("guid", guid) if guid else ("url", link) if link else ("words", words)
        if key in seen:
            continue
        seen.add(key)
        out.append(Expected(guid or None, link or None, words))
    return out


@dataclass
class Outcome:
    case: Case
    expected: int
    stored: int
    problems: list[str] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return not self.problems


def compare(case: Case, url: str, rows: Iterable[tuple[Any, ...]], error: str | None) -> Outcome:
    """``rows``: (guid, url, title, text) of the stored items in insertion order;
    ``error``: the source's last error."""
    stored = list(rows)
    want = expected(case, url)
    outcome = Outcome(case, len(want), len(stored))
    if case.failure is not None:
        if stored or not error or case.failure not in error:
            outcome.problems.append(f"expected error {case.failure!r}, got {error!r}")
        return outcome
    if error:
        outcome.problems.append(f"source failed: {error}")
    by_identity: Mapping[Any, tuple[Any, ...]] = {(r[0], r[1]): r for r in stored}
    unmatched = list(stored)
    for entry in want:
        if entry.guid or entry.link:
            row = by_identity.get((entry.guid, entry.link))
        else:  # identified by its content: the stored item holding its words
            row = next((r for r in unmatched if entry.words <= _stored_words(r[2], r[3])), None)
        if row is None:
            outcome.problems.append(f"entry {entry.guid or entry.link or '(no id)'}: not stored")
            continue
        missing = entry.words - _stored_words(row[2], row[3])
        if missing:
            outcome.problems.append(
                f"entry {entry.guid or entry.link}: words lost {sorted(missing)}"
            )
        if row in unmatched:
            unmatched.remove(row)
    for row in unmatched:
        outcome.problems.append(f"stored an item feedparser does not have: {row[:3]}")
    return outcome


def summary(outcomes: list[Outcome]) -> dict[str, Any]:
    matched = [o for o in outcomes if o.matches]
    return {
        "feeds": len(outcomes),
        "matching": len(matched),
        "ratio": round(len(matched) / len(outcomes), 3) if outcomes else None,
        "entries_expected": sum(o.expected for o in outcomes),
        "entries_stored": sum(o.stored for o in outcomes),
        "mismatches": [
            {
                "file": o.case.file,
                "why": o.case.mismatch or "UNEXPLAINED",
                "problems": o.problems,
            }
            for o in outcomes
            if not o.matches
        ],
    }


@dataclass(frozen=True)
class Run:
    outcomes: list[Outcome]
    registry: Any  # the worker's metrics
    errors: dict[str, str | None]  # last error of every source, extra ones included


def ingest(workdir: Path, extra: Callable[[Any], list[dict[str, Any]]] | None = None) -> Run:
    """Serve every case on 127.0.0.1, let a real worker fetch, parse and store them
    all (plus the sources ``extra(server)`` adds), and compare."""
    import sqlite3

    from atlas.core import settings as core_settings
    from atlas.core.store import open_store
    from atlas.core.worker import Worker
    from seams.testing import FakeClock
    from tests.support.feeds import FeedServer, Reply, core_config, source

    all_cases = cases()
    db = workdir / "corpus.db"
    with FeedServer() as server:
        for case in all_cases:
            server.routes["/" + case.file] = Reply(
                body=case.body, headers={"Content-Type": case.content_type}
            )
        sources = [source(c.source, url=server.url("/" + c.file)) for c in all_cases]
        config = core_config(db, [*sources, *(extra(server) if extra else [])])
        settings = core_settings.from_dict(config, workdir / "core.json").for_instance(1)
        worker = Worker(settings, open_store(db, 5), clock=FakeClock(), rand=lambda: 0.0)
        worker.start()
        try:
            worker.run_until_idle(60)
        finally:
            worker.shutdown()
            worker.store.close()
        conn = sqlite3.connect(db)
        try:
            outcomes = []
            for case in all_cases:
                rows = conn.execute(
                    "SELECT guid, url, title, text FROM items WHERE source = ? ORDER BY id",
                    (case.source,),
                ).fetchall()
                (error,) = conn.execute(
                    "SELECT last_error FROM sources WHERE name = ?", (case.source,)
                ).fetchone()
                outcomes.append(compare(case, server.url("/" + case.file), rows, error))
            errors = dict(conn.execute("SELECT name, last_error FROM sources").fetchall())
        finally:
            conn.close()
    return Run(outcomes, worker.metrics.registry, errors)
