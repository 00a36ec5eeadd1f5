"""Parsing of the API's query parameters: opaque cursors, times, and the
full-text query (user text → a safe FTS5 MATCH expression; the one outside help
is SQLite's own tokenizer, in memory, to stem a prefix as the index does). Each
raises ``BadRequest`` with a message fit to show the client."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import sqlite3
import threading
from datetime import UTC, datetime
from functools import lru_cache

from atlas.core.schema import FTS_TOKENIZE

MAX_QUERY_CHARS = 256
MAX_QUERY_TERMS = 16
_TERM = re.compile(r'"([^"]*)"?|(\S+)')
_WORD = re.compile(r"\w+", re.UNICODE)
_SOURCE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
CURSOR_PREFIX = "c1."


class BadRequest(ValueError):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def encode_cursor(ts: float, item_id: int) -> str:
    raw = json.dumps([ts, item_id], separators=(",", ":")).encode()
    return CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, int]:
    """(ts, id) of the last item of the previous page."""
    bad = BadRequest("invalid cursor: pass back the nextCursor of a previous page", "cursor")
    if not cursor.startswith(CURSOR_PREFIX) or len(cursor) > 200:
        raise bad
    body = cursor[len(CURSOR_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        ts, item_id = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise bad from exc
    if (
        not isinstance(ts, int | float)
        or isinstance(ts, bool)
        or not math.isfinite(ts)
        or not isinstance(item_id, int)
        or isinstance(item_id, bool)
        or not 0 < item_id < 2**63  # SQLite's INTEGER: a bigger id was never handed out
    ):
        raise bad
    return float(ts), item_id


def parse_limit(value: str | None, page_size: int) -> int:
    if value is None:
        return page_size
    try:
        limit = int(value)
    except ValueError as exc:
        raise BadRequest(f"limit: expected a whole number, got {value[:20]!r}", "limit") from exc
    if not 1 <= limit <= page_size:
        raise BadRequest(f"limit: between 1 and {page_size}", "limit")
    return limit


def parse_time(value: str, param: str) -> float:
    """Epoch seconds from epoch seconds or ISO 8601 (a time without zone is UTC)."""
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number):
            return number
        raise BadRequest(f"{param}: not a finite time", param)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(
            f"{param}: expected ISO 8601 (2024-05-01T12:00:00Z) or epoch seconds, got {value!r}",
            param,
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def check_source(name: str) -> str:
    if not _SOURCE.match(name):
        raise BadRequest(f"source: {name[:80]!r} is not a source name", "source")
    return name


_stemmer = threading.local()


@lru_cache(maxsize=4096)
def _stem(word: str) -> str:
    """``word`` as the index holds it: SQLite's own tokenizer (the index's, in an
    in-memory table) so that query and index always agree."""
    conn: sqlite3.Connection | None = getattr(_stemmer, "conn", None)
    if conn is None:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.execute(f"CREATE VIRTUAL TABLE w USING fts5(t, tokenize='{FTS_TOKENIZE}')")
        conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(w, 'row')")
        _stemmer.conn = conn
    conn.execute("DELETE FROM w")
    conn.execute("INSERT INTO w (t) VALUES (?)", (word,))
    terms = [t for (t,) in conn.execute("SELECT term FROM v")]
    return terms[0] if len(terms) == 1 else word


def _prefix(words: list[str]) -> str:
    """A prefix search on the last word. The index holds stems, so a prefix also
    matches as a stem ("happy*": "happi"), and the stems it may have been cut from
    the end of: "operat*" finds "operating", held as "oper" (tokens down to three
    letters shorter, and at least three long)."""
    head = " ".join(words[:-1])
    last = words[-1]

    def phrase(word: str, star: str = "") -> str:
        return '"' + f"{head} {word}".strip() + '"' + star

    options = [phrase(last, "*")]
    stem = _stem(last)
    if stem.lower() != last.lower():
        options.append(phrase(stem, "*"))
    options += [phrase(last[:n]) for n in range(len(last) - 1, max(2, len(last) - 4), -1)]
    return options[0] if len(options) == 1 else "(" + " OR ".join(options) + ")"


def fts_query(q: str) -> str:
    """A MATCH expression that searches for every word of ``q`` (all must occur).

    Words match their stems ("operations" finds "Operating") with diacritics
    folded ("cafe" finds "Café"). "double quotes" keep a phrase, a trailing *
    makes a prefix search; anything else FTS5 would read as syntax (AND, NEAR,
    column filters, ^, parentheses) is only ever a quoted word here, so user
    input cannot inject query syntax.
    """
    if len(q) > MAX_QUERY_CHARS:
        raise BadRequest(f"q: longer than {MAX_QUERY_CHARS} characters", "q")
    parts: list[str] = []
    for match in _TERM.finditer(q):
        phrase, bare = match.group(1), match.group(2)
        text = phrase if phrase is not None else bare
        words = _WORD.findall(text)
        if not words:
            continue
        prefix = text.endswith("*") or (phrase is not None and q[match.end() :].startswith("*"))
        parts.append(_prefix(words) if prefix else '"' + " ".join(words) + '"')
    if not parts:
        raise BadRequest("q: no words to search for", "q")
    if len(parts) > MAX_QUERY_TERMS:
        raise BadRequest(f"q: more than {MAX_QUERY_TERMS} terms", "q")
    return " AND ".join(parts)  # FTS5 joins a (group) to what follows only by AND
