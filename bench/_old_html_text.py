"""The html.parser/regular-expression extractor Atlas used before selectolax, kept
only so that bench/html_text_speed.py can measure the new one against it.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

SKIP = frozenset(
    {
        "script",
        "style",
        "noscript",
        "template",
        "svg",
        "math",
        "nav",
        "header",
        "footer",
        "aside",
        "form",
        "button",
        "select",
        "iframe",
        "object",
        "canvas",
        "head",
    }
)
BLOCK = frozenset(
    {
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "section",
        "article",
        "main",
        "blockquote",
        "pre",
        "hr",
        "dd",
        "dt",
        "dl",
        "figure",
        "figcaption",
        "title",
    }
)
VOID = frozenset(
    {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "wbr"}
)
MAIN = frozenset({"main", "article"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class _Extractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.skip_depth = 0
        self.main_depth = 0
        self.in_title = False
        self.title: list[str] = []
        self.og_title: str | None = None
        self.h1: list[str] = []
        self.in_h1 = False
        self.all_text: list[str] = []
        self.main_text: list[str] = []
        self.saw_main = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "meta":
            values = dict(attrs)
            if values.get("property") == "og:title" and values.get("content"):
                self.og_title = values["content"]
            return
        if tag == "title":
            self.in_title = True
        if tag in VOID:
            if tag in BLOCK:
                self._add("\n")
            return
        if tag in SKIP:
            self.skip_depth += 1
        if tag in MAIN:
            self.main_depth += 1
            self.saw_main = True
        if tag == "h1":
            self.in_h1 = True
        if tag in BLOCK:
            self._add("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        if tag in VOID:
            return
        if tag in BLOCK:
            self._add("\n")
        if tag in SKIP and self.skip_depth > 0:
            self.skip_depth -= 1
        if tag in MAIN and self.main_depth > 0:
            self.main_depth -= 1
        if tag == "h1":
            self.in_h1 = False

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
            return
        if self.in_h1:
            self.h1.append(data)
        if self.skip_depth == 0:
            self._add(data)

    def _add(self, text: str) -> None:
        if self.skip_depth:
            return
        self.all_text.append(text)
        if self.main_depth:
            self.main_text.append(text)


def normalize(text: str) -> str:
    """Collapse spaces within lines and blank lines between them."""
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def extract(document: str) -> tuple[str, str]:
    """(title, readable text) of an HTML document; either may be empty."""
    parser = _Extractor()
    parser.feed(document)
    parser.close()
    title = normalize("".join(parser.title)) or normalize(parser.og_title or "")
    title = title or normalize("".join(parser.h1))
    body = parser.main_text if parser.saw_main and "".join(parser.main_text).strip() else None
    return title, normalize("".join(body if body is not None else parser.all_text))


_DROP = re.compile(
    r"<(script|style|noscript|template|svg|math|iframe|object|head)\b[^>]*>.*?</\1\s*>",
    re.IGNORECASE | re.DOTALL,
)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_BLOCK_TAG = re.compile(
    r"</?(?:" + "|".join(sorted(BLOCK - {"title"})) + r")\b[^>]*>", re.IGNORECASE
)
_TAG = re.compile(r"<[^>]*>")


def to_text(fragment: str) -> str:
    """Plain text of an HTML fragment (a feed entry's summary or content).

    Fragments have no page structure to read, so regular expressions do here what
    ``extract`` does with a parser, several times faster: this runs for every
    entry of every feed."""
    if "<" not in fragment:
        return normalize(html.unescape(fragment)) if "&" in fragment else normalize(fragment)
    text = _COMMENT.sub("", _DROP.sub("", fragment))
    text = _TAG.sub("", _BLOCK_TAG.sub("\n", text))
    return normalize(html.unescape(text))
