"""Scrape a component's ``/metrics`` and parse it with prometheus-client's parser.

A failed scrape (no answer, non-2xx, unparsable text) is a ``Scrape`` with
``ok=False`` and the reason — never an exception out of ``scrape``.

prometheus-client's parser reads character by character (about 30 µs a line), the
largest part of the agent's idle CPU. ``FamilyCache`` splits a page into its metric
families and re-parses only the families whose text changed since the previous
scrape of that component (on a quiet component most of them: gauges, build info,
GC stats); the result is the same as parsing the whole page. The series a
component exposes become available to rules with a ``component`` label added (a
series that already has one keeps it as ``exported_component``, as Prometheus does).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from atlas.errors import ProbeFailure
from atlas.monitoring.clock import Clock
from atlas.monitoring.http import Http
from atlas.monitoring.samples import Sample, labels_of
from atlas.monitoring.settings import Component

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


class FamilyCache:
    """Parsed families of one component's previous page, by the text of each family."""

    def __init__(self) -> None:
        self._last: dict[str, list[Family]] = {}

    def parse(self, text: str) -> list[Family]:
        out: list[Family] = []
        fresh: dict[str, list[Family]] = {}
        for block in split_families(text):
            parsed = self._last.get(block)
            if parsed is None:
                parsed = parse_metrics(block)
            fresh[block] = parsed
            out += parsed
        self._last = fresh
        return out


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


def exposed(s: Scrape) -> list[Sample]:
    """The component's own series, labelled with the component, for rules."""
    out = []
    for fam in s.families:
        for smp in fam.samples:
            labels = dict(smp.labels)
            if "component" in labels:
                labels["exported_component"] = labels.pop("component")
            labels["component"] = s.component
            out.append(Sample(smp.name, labels_of(labels), smp.value))
    return out
