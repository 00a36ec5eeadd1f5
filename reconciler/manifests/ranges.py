"""Checks of Environment settings that JSON Schema cannot express.

The schema checks types, patterns and integer ranges (ports 1–65535, log levels, …);
these add the ranges of durations and sizes, which the schema can only see as
strings, and what a database path must look like. ``problems`` is pure: it takes a
schema-valid ``spec`` and returns (path, message) pairs that validate.py turns into
located Problems (file and line of the offending value).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.quantities import parse_duration, parse_size

# (section, key) → (least, most) seconds
DURATION_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("database", "busyTimeout"): (0.1, 300),
    ("core", "timeout"): (1, 600),
    ("monitoring", "interval"): (1, 3600),
    ("reconciler", "interval"): (10, 86400),
}
# (section, key) → (least, most) bytes
SIZE_RANGES: dict[tuple[str, str], tuple[int, int]] = {
    ("core", "maxBodySize"): (1024, 1024**3),
}

PathKey = tuple[str | int, ...]


def human_duration(seconds: float) -> str:
    """``0.1`` → ``100ms``, ``600`` → ``10m``, ``86400`` → ``1d`` (exact units only)."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def human_size(size: int) -> str:
    for unit, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if size % factor == 0:
            return f"{size // factor}{unit}"
    return str(size)


def _show(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


def _path_problem(value: str) -> str | None:
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "expected a path without control characters (tabs, newlines)"
    if value.endswith("/"):
        return "expected the path of a file, not of a folder"
    parts = value.split("/")
    if any(part in ("", ".") for part in parts):
        return "expected a plain relative path (no '.' or empty parts, no '//')"
    return None


def problems(spec: Mapping[str, Any]) -> list[tuple[PathKey, str]]:
    """(path of the value, message) for each setting out of its range or shape."""
    found: list[tuple[PathKey, str]] = []
    for (section, key), (least, most) in DURATION_RANGES.items():
        block = spec.get(section)
        value = block.get(key) if isinstance(block, Mapping) else None
        if not isinstance(value, str):
            continue
        try:
            seconds = parse_duration(value)
        except ValueError:
            continue  # the schema reports the shape
        if not least <= seconds <= most:
            found.append(
                (
                    ("spec", section, key),
                    f"spec.{section}.{key}: expected a duration from {human_duration(least)} "
                    f"to {human_duration(most)}; got {_show(value)}",
                )
            )
    for (section, key), (low, high) in SIZE_RANGES.items():
        block = spec.get(section)
        value = block.get(key) if isinstance(block, Mapping) else None
        if not isinstance(value, str):
            continue
        try:
            size = parse_size(value)
        except ValueError:
            continue
        if not low <= size <= high:
            found.append(
                (
                    ("spec", section, key),
                    f"spec.{section}.{key}: expected a size from {human_size(low)} to "
                    f"{human_size(high)}; got {_show(value)}",
                )
            )
    database = spec.get("database")
    path = database.get("path") if isinstance(database, Mapping) else None
    if isinstance(path, str):
        bad = _path_problem(path)
        if bad:
            found.append(
                (("spec", "database", "path"), f"spec.database.path: {bad}; got {_show(path)}")
            )
    return found
