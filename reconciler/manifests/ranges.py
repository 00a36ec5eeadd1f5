"""Checks of Environment settings that JSON Schema cannot express.

The schema checks types, patterns and integer ranges (ports 1–65535, log levels, …);
these add the ranges of durations and sizes, which the schema can only see as
strings, and what a database path must look like. ``problems`` is pure: it takes a
schema-valid ``spec`` and returns (path, message) pairs that references.py turns into
located Problems (file and line of the offending value).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.quantities import human_duration, human_size, parse_duration, parse_size

PathKey = tuple[str | int, ...]


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


@dataclass(frozen=True)
class Range:
    what: str  # how the message names the kind of value
    parse: Callable[[str], float]
    human: Callable[[Any], str]
    least: float
    most: float


def _duration(least: float, most: float) -> Range:
    return Range("duration", parse_duration, human_duration, least, most)


def _size(least: int, most: int) -> Range:
    return Range("size", parse_size, human_size, least, most)


# (section, key) of an Environment's spec → the range of its value
RANGES: dict[tuple[str, str], Range] = {
    ("database", "busyTimeout"): _duration(0.1, 300),
    ("core", "timeout"): _duration(1, 600),
    ("monitoring", "interval"): _duration(1, 3600),
    ("reconciler", "interval"): _duration(10, 86400),
    ("core", "maxBodySize"): _size(1024, 1024**3),
}


def _value(spec: Mapping[str, Any], section: str, key: str) -> Any:
    block = spec.get(section)
    return block.get(key) if isinstance(block, Mapping) else None


def _out_of_range(section: str, key: str, r: Range, value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        n = r.parse(value)
    except ValueError:
        return None  # the schema reports the shape
    if r.least <= n <= r.most:
        return None
    return (
        f"spec.{section}.{key}: expected a {r.what} from {r.human(r.least)} "
        f"to {r.human(r.most)}; got {_show(value)}"
    )


def _network_problems(networks: Any) -> list[tuple[PathKey, str]]:
    if not isinstance(networks, list):
        return []
    found: list[tuple[PathKey, str]] = []
    for i, value in enumerate(networks):
        if not isinstance(value, str):
            continue  # the schema reports the type
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            found.append(
                (
                    ("spec", "sources", "allowPrivateNetworks", i),
                    f"spec.sources.allowPrivateNetworks[{i}]: expected a network in CIDR "
                    f"form such as 10.0.0.0/8 or fd00::/8; got {_show(value)}",
                )
            )
    return found


def problems(spec: Mapping[str, Any]) -> list[tuple[PathKey, str]]:
    """(path of the value, message) for each setting out of its range or shape."""
    found: list[tuple[PathKey, str]] = []
    for (section, key), r in RANGES.items():
        bad = _out_of_range(section, key, r, _value(spec, section, key))
        if bad:
            found.append((("spec", section, key), bad))
    found += _network_problems(_value(spec, "sources", "allowPrivateNetworks"))
    path = _value(spec, "database", "path")
    if isinstance(path, str):
        bad = _path_problem(path)
        if bad:
            found.append(
                (("spec", "database", "path"), f"spec.database.path: {bad}; got {_show(path)}")
            )
    return found
