"""Turn fetched bytes (or a source's bundled text) into items.

* ``rss``: feedparser on the bytes (RSS 0.9x/1.0/2.0, Atom); a document that is
  no feed at all is a ``ContentError``. Every entry that carries anything (a
  GUID, link, title, summary or content: RSS 2.0 makes each optional) is an
  item, identified by its content hash when it has no GUID or link. Skipped,
  and counted (``Feed.skipped``): entries with nothing at all, and the last
  entry of a malformed feed when it has no GUID or link (cut off mid-way, its
  text is partial; stored by hash it would later sit beside the complete one).
* ``url``: one item per page: its title and readable text (``html_text``).
* ``text`` / ``file``: one item holding the config's text.
"""

from __future__ import annotations

import calendar
import codecs
import logging
import re
from dataclasses import dataclass
from typing import Any

import feedparser

from atlas.core import html_text
from atlas.core.model import Item, Response
from atlas.core.settings import SourceSettings
from atlas.errors import ContentError

log = logging.getLogger(__name__)
_ROOT_CLOSED = re.compile(rb"</(?:[\w.-]+:)?(?:rss|feed|rdf)\s*>\s*\Z", re.IGNORECASE)
_CHARSET = re.compile(r"charset\s*=\s*['\"]?([\w.:-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=\s*['\"]?([\w.:-]+)", re.IGNORECASE)


def _epoch(parsed: Any) -> float | None:
    if not parsed:
        return None
    try:
        return float(calendar.timegm(parsed))
    except (TypeError, ValueError, OverflowError):
        return None


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _text(value: Any, detail: Any) -> str:
    """Plain text of an entry's title, summary or content: HTML unless feedparser
    says the feed declared it plain text (Atom type="text", an RSS title), where
    "a <b> c" is what the author wrote, not markup."""
    if not isinstance(value, str) or not value:
        return ""
    if isinstance(detail, dict) and dict.get(detail, "type") == "text/plain":
        return html_text.normalize(value)
    return html_text.to_text(value)


def _entry(entry: dict[str, Any]) -> Item | None:
    # dict.get, not FeedParserDict.get: its key aliasing costs more than the lookups
    get = dict.get
    guid = _clean(get(entry, "id"))
    link = _clean(get(entry, "link"))
    title = _text(get(entry, "title"), get(entry, "title_detail"))
    content = get(entry, "content")
    body = content[0] if content and dict.get(content[0], "value") else None
    if body is not None:
        text = _text(dict.get(body, "value"), body)
    else:
        text = _text(get(entry, "summary"), get(entry, "summary_detail"))
    if not (guid or link or title or text):
        return None
    return Item(
        title=title,
        text=text,
        guid=guid,
        url=link,
        author=_clean(get(entry, "author")),
        published_at=_epoch(get(entry, "published_parsed") or get(entry, "updated_parsed")),
    )


@dataclass(frozen=True)
class Feed:
    items: tuple[Item, ...]
    skipped: int = 0  # entries that carried nothing (or were cut off), not items


def parse_feed(body: bytes, content_type: str = "", url: str = "") -> tuple[Item, ...]:
    """The items of an RSS or Atom document; ContentError when it is not a feed."""
    return read_feed(body, content_type, url).items


def read_feed(body: bytes, content_type: str = "", url: str = "") -> Feed:
    """The items of an RSS or Atom document and how many entries were skipped."""
    headers = {"content-location": url} if url else {}
    if content_type:
        headers["content-type"] = content_type
    try:
        # The HTML of entries becomes plain text (html_text), so feedparser's
        # sanitising and relative-URI rewriting of it would be wasted work.
        parsed = feedparser.parse(
            body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
    except Exception as exc:
        raise ContentError(f"{url or 'feed'}: feedparser failed: {exc}") from exc
    entries = parsed.get("entries") or []
    if not parsed.get("version") and not entries:
        problem = parsed.get("bozo_exception")
        why = f": {problem}" if problem else ""
        raise ContentError(f"{url or 'document'}: not an RSS or Atom feed{why}")
    if parsed.get("bozo"):
        log.info("%s: malformed feed, recovered %d entries", url, len(entries))
    items = [_entry(e) for e in entries]
    last = items[-1] if items else None
    if last is not None and not (last.guid or last.url) and _cut_off(body, parsed):
        items[-1] = None
    kept = tuple(item for item in items if item is not None)
    return Feed(kept, len(items) - len(kept))


def _cut_off(body: bytes, parsed: Any) -> bool:
    """A malformed document that stops before its root element is closed."""
    return bool(parsed.get("bozo")) and not _ROOT_CLOSED.search(body[-512:])


_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _decode(body: bytes, content_type: str) -> str:
    """A page's text: a byte-order mark wins (as in browsers), then the header's
    charset, then a <meta> one, then UTF-8; an unknown charset name is UTF-8."""
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(codec, errors="replace")
    match = _CHARSET.search(content_type) or _META_CHARSET.search(body[:4096])
    charset = match.group(1) if match else "utf-8"
    if isinstance(charset, bytes):
        charset = charset.decode("ascii", "replace")
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def parse_page(response: Response, identity: str) -> Item:
    """A web page as one item (its GUID: ``identity``, the configured URL, so a moved
    page is updated, not duplicated); ContentError for what is neither HTML nor text."""
    mime = response.content_type.split(";")[0].strip().lower()
    text = _decode(response.body, response.content_type)
    if mime in ("text/plain", "text/markdown"):
        return Item(title="", text=html_text.normalize(text), guid=identity, url=response.url)
    if mime and mime not in ("text/html", "application/xhtml+xml"):
        raise ContentError(f"{response.url}: not a web page ({mime})")
    title, readable = html_text.extract(text)
    return Item(title=title, text=readable, guid=identity, url=response.url)


def text_item(source: SourceSettings) -> Item:
    """The bundled text of a ``text`` or ``file`` source, identified by the source itself."""
    return Item(
        title=source.title or source.name,
        text=source.text or "",
        guid=f"{source.type}:{source.name}",
    )
