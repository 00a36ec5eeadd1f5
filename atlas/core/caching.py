"""Pure readings of HTTP caching and back-off headers: Retry-After, and how long a
response says it stays fresh (Cache-Control max-age, else Expires − Date)."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime


def http_date(value: str) -> float | None:
    """An HTTP-date as epoch seconds, or None when it is not one."""
    try:
        parsed = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None  # type: ignore[unreachable]  # older Pythons returned None
    return parsed.timestamp()


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    when = http_date(value)
    return None if when is None else max(0.0, when - now)


def freshness(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the response stays fresh per its headers; 0 for no-store/no-cache."""
    cache_control = headers.get("cache-control", "")
    directives: dict[str, str] = {}
    for part in cache_control.split(","):
        name, _, arg = part.strip().partition("=")
        if name:
            directives[name.lower()] = arg.strip().strip('"')
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    if "max-age" in directives:
        try:
            return max(0.0, float(int(directives["max-age"])))
        except ValueError:
            return None
    expires = headers.get("expires")
    if expires:
        when = http_date(expires)
        if when is None:
            return 0.0  # RFC 9111: an invalid Expires means already expired
        date = http_date(headers.get("date", "")) or now
        return max(0.0, when - date)
    return None
