"""Metric selectors of AlertRules: ``name{label="v",other=~"re"}``, as PromQL writes them."""

from __future__ import annotations

import re

_SELECTOR = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?P<matchers>.*)\})?\Z", re.S)
_MATCHER = re.compile(
    r'\s*(?P<label>[a-zA-Z_][a-zA-Z0-9_]*)\s*(?P<op>=~|!~|!=|=)\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(,|$)'
)


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
        value = m.group("value").encode().decode("unicode_escape")
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
