"""Durations and sizes as manifests write them ("30s", "512M"), read and shown back."""

from __future__ import annotations

import re

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h|d|w))+$"
SIZE_PATTERN = r"^[0-9]+(\.[0-9]+)?[KMGT]?$"

_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(SIZE_PATTERN)
_SIZE_FACTOR = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``90s``, ``15m``, ``1h30m``; ValueError otherwise."""
    if not isinstance(text, str) or not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"expected a duration like 30s, 15m, 2h; got {text!r}")
    return sum(int(n) * _DURATION_SECONDS[u] for n, u in _DURATION_PART.findall(text))


def parse_size(text: str) -> int:
    """Bytes in a size such as ``512M`` or ``2G`` (binary multiples); ValueError otherwise."""
    if not isinstance(text, str) or not _SIZE.fullmatch(text):
        raise ValueError(f"expected a size like 512M or 2G; got {text!r}")
    suffix = text[-1] if text[-1] in _SIZE_FACTOR else ""
    number = text[:-1] if suffix else text
    return int(float(number) * _SIZE_FACTOR[suffix])


def systemd_timespan(seconds: float) -> str:
    """A duration as systemd writes it in unit files (``1min 30s``, ``500ms``)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    whole = int(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if whole >= size:
            parts.append(f"{whole // size}{unit}")
            whole %= size
    return " ".join(parts)


def human_duration(seconds: float) -> str:
    """``0.1`` → ``100ms``, ``600`` → ``10m``, ``86400`` → ``1d`` (exact units only)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def human_size(size: float) -> str:
    """``1024`` → ``1K``, ``1073741824`` → ``1G`` (exact units only)."""
    size = int(size)
    for unit, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)
