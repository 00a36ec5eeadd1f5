"""Scrape a component's ``/metrics`` and parse it with prometheus-client's parser.

A failed scrape (no answer, non-2xx, unparsable text) is a ``Scrape`` with
``ok=False`` and the reason — never an exception out of ``scrape``.

prometheus-client's parser reads character by character (about 30 µs a line): it
was the largest part of the agent's idle CPU. ``FamilyCache`` keeps what the
previous page of a component parsed into, so that only new series and new headers
go through the parser again; the result is the same as parsing the whole page. The series a
component exposes become available to rules with a ``component`` label added (a
series that already has one keeps it as ``exported_component``, as Prometheus does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from prometheus_client.parser import text_string_to_metric_families

from atlas.errors import ProbeFailure
from atlas.monitoring.component import Component
from atlas.monitoring.http import Http
from atlas.monitoring.samples import Labels, Sample, labels_of
from seams.clock import Clock

MAX_METRICS_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Family:
    name: str  # the family name (a counter's without _total)
    type: str  # counter, gauge, histogram, summary, untyped, …
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class Scrape:
    component: str
    ok: bool
    at: float  # monotonic time of the scrape
    duration_s: float = 0.0
    error: str | None = None
    families: tuple[Family, ...] = field(default_factory=tuple)

    def family(self, name: str) -> Family | None:
        return next((f for f in self.families if f.name == name), None)

    @property
    def sample_count(self) -> int:
        return sum(len(f.samples) for f in self.families)


def parse_metrics(text: str) -> list[Family]:
    """Prometheus text format → families; ``ValueError`` when it is not valid."""
    out = []
    for fam in text_string_to_metric_families(text):
        samples = tuple(Sample(s.name, labels_of(s.labels), float(s.value)) for s in fam.samples)
        out.append(Family(fam.name, fam.type, samples))
    return out


def split_families(text: str) -> list[str]:
    """The page cut before every ``# HELP``/``# TYPE`` line that names a new metric."""
    blocks: list[str] = []
    current: list[str] = []
    name = None
    for line in text.splitlines(keepends=True):
        if line.startswith(("# HELP ", "# TYPE ")):
            parts = line.split(None, 3)
            this = parts[2] if len(parts) > 2 else ""
            if this != name and current:
                blocks.append("".join(current))
                current = []
            name = this
        current.append(line)
    if current:
        blocks.append("".join(current))
    return blocks


def _series_key(line: str) -> tuple[str, str]:
    """A sample line split into its series (name and labels) and the rest (value and
    an optional timestamp)."""
    brace = line.rfind("}")
    if brace >= 0:
        return line[: brace + 1], line[brace + 1 :]
    name, _, rest = line.partition(" ")
    return name, rest


class FamilyCache:
    """What one component's previous page parsed into, so as not to parse it again.

    Two levels, like Prometheus' own scrape cache: a family whose text did not change
    is taken whole; in one that changed, series seen before only have their value
    re-read (``float``). A family with a new series, a new header, a timestamp or a
    shape not seen before goes through prometheus-client's parser. Only what the
    previous page used is remembered, so the cache does not grow with series that
    come and go.
    """

    def __init__(self) -> None:
        self._blocks: dict[str, list[Family]] = {}
        self._series: dict[str, tuple[str, Labels]] = {}
        self._shapes: dict[str, tuple[str, str]] = {}  # header lines -> (name, type)

    def parse(self, text: str) -> list[Family]:
        out: list[Family] = []
        seen = _Seen()
        for block in split_families(text):
            parsed = self._blocks.get(block)
            if parsed is not None:
                self._carry(block, seen)
            else:
                parsed = self._values_only(block, seen)
            if parsed is None:
                parsed = parse_metrics(block)
                self._learn(block, parsed, seen)
            seen.blocks[block] = parsed
            out += parsed
        self._blocks, self._series, self._shapes = seen.blocks, seen.series, seen.shapes
        return out

    @staticmethod
    def _split(block: str) -> tuple[str, list[str]]:
        header: list[str] = []
        lines: list[str] = []
        for line in block.splitlines():
            (header if not line or line.startswith("#") else lines).append(line)
        return "\n".join(header), lines

    def _values_only(self, block: str, seen: _Seen) -> list[Family] | None:
        header, lines = self._split(block)
        shape = self._shapes.get(header)
        if shape is None:
            return None
        samples = []
        for line in lines:
            key, rest = _series_key(line)
            known = self._series.get(key)
            value = rest.strip()
            if known is None or not value or " " in value:
                return None
            try:
                number = float(value)
            except ValueError:
                return None
            samples.append(Sample(known[0], known[1], number))
        for line in lines:
            key = _series_key(line)[0]
            seen.series[key] = self._series[key]
        seen.shapes[header] = shape
        return [Family(shape[0], shape[1], tuple(samples))]

    def _learn(self, block: str, parsed: list[Family], seen: _Seen) -> None:
        header, lines = self._split(block)
        flat = [smp for fam in parsed for smp in fam.samples]
        if len(parsed) != 1 or len(flat) != len(lines):
            return  # an unusual block: always parsed
        for line, smp in zip(lines, flat, strict=True):
            seen.series[_series_key(line)[0]] = (smp.name, smp.labels)
        seen.shapes[header] = (parsed[0].name, parsed[0].type)

    def _carry(self, block: str, seen: _Seen) -> None:
        header, lines = self._split(block)
        if header in self._shapes:
            seen.shapes[header] = self._shapes[header]
        for line in lines:
            key = _series_key(line)[0]
            if key in self._series:
                seen.series[key] = self._series[key]


@dataclass
class _Seen:
    """What the page being parsed used: the next page's cache."""

    blocks: dict[str, list[Family]] = field(default_factory=dict)
    series: dict[str, tuple[str, Labels]] = field(default_factory=dict)
    shapes: dict[str, tuple[str, str]] = field(default_factory=dict)


def scrape(
    c: Component, http: Http, clock: Clock, cache: FamilyCache | None = None
) -> Scrape | None:
    """Scrape ``c`` (None when it has no metrics URL)."""
    if not c.metrics_url:
        return None
    start = clock.monotonic()
    try:
        r = http.get(c.metrics_url, timeout=c.timeout_s, max_bytes=MAX_METRICS_BYTES)
        if not r.ok:
            raise ProbeFailure(f"HTTP {r.status}")
        families = cache.parse(r.text) if cache is not None else parse_metrics(r.text)
    except ProbeFailure as exc:
        return Scrape(c.name, False, start, clock.monotonic() - start, str(exc))
    except ValueError as exc:
        return Scrape(c.name, False, start, clock.monotonic() - start, f"unparsable metrics: {exc}")
    return Scrape(c.name, True, start, clock.monotonic() - start, None, tuple(families))


@lru_cache(maxsize=65536)
def _relabel(component: str, labels: Labels) -> Labels:
    out = dict(labels)
    if "component" in out:
        out["exported_component"] = out.pop("component")
    out["component"] = component
    return labels_of(out)


def exposed(s: Scrape) -> list[Sample]:
    """The component's own series, labelled with the component, for rules."""
    return [
        Sample(smp.name, _relabel(s.component, smp.labels), smp.value)
        for fam in s.families
        for smp in fam.samples
    ]
