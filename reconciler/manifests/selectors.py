"""Metric selectors of AlertRules: ``name{label="v",other=~"re"}``, as PromQL writes them."""

from __future__ import annotations

import re

_SELECTOR = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<matchers>.*)\})?\Z", re.S)
_MATCHER = re.compile(
    r'\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(,|$)'
)


_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
    "'": "'",
}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.S)


def unquote(body: str) -> str:
    """The value of a double-quoted PromQL string (without its quotes), as Prometheus
    reads it: Go's escapes, and every other character as itself (``café`` is
    ``café``). ValueError names an escape Go does not have."""

    def one(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[esc]
        if esc[0] in "xuU" and len(esc) > 1:
            code = int(esc[1:], 16)
        elif len(esc) == 3:
            code = int(esc, 8)
        else:
            raise ValueError(
                f"unknown escape \\{esc} in a label value: expected one of "
                '\\\\ \\" \\n \\t \\xHH \\uHHHH (other characters stand for themselves)'
            )
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"escape \\{esc} in a label value is not a Unicode character")
        return chr(code)

    return _ESCAPE.sub(one, body)


def _matchers(body: str) -> list[tuple[str, str, str]]:
    matchers: list[tuple[str, str, str]] = []
    pos = 0
    while pos < len(body):
        m = _MATCHER.match(body, pos)
        if not m or m.end() == pos:
            raise ValueError(
                f"cannot read label matcher at {body[pos : pos + 20]!r}: expected "
                'label="value" (operators = != =~ !~), separated by commas'
            )
        value = unquote(m.group("value"))
        if m.group("op") in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
        matchers.append((m.group("label"), m.group("op"), value))
        pos = m.end()
    return matchers


def parse_selector(text: str) -> tuple[str, list[tuple[str, str, str]]]:
    """``name{label="v",other=~"re"}`` → (name, [(label, op, value)]); ValueError when malformed."""
    match = _SELECTOR.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise ValueError(f'expected a metric selector like name{{label="value"}}; got {text!r}')
    body = match.group("matchers")
    return match.group("name"), _matchers(body) if body is not None and body.strip() else []


def selector_problem(text: str) -> str | None:
    try:
        parse_selector(text)
    except ValueError as exc:
        return str(exc)
    return None
