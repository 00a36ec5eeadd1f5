"""Business metrics of the ingestion worker, in a per-process CollectorRegistry.

atlas_ingest_items_total{source,result}   items stored: result new | updated | unchanged
atlas_ingest_fetches_total{source,status} fetches: ok | not_modified | unchanged | failed
atlas_ingest_entries_skipped_total{source} feed entries not stored: empty, or cut off
atlas_ingest_fetch_duration_seconds       time of each HTTP attempt (histogram)
atlas_ingest_backlog                      sources due but not (yet) being fetched
atlas_ingest_source_errors{source}        consecutive failed fetches of a source
atlas_ingest_stalled_sources              sources whose latest attempt ran out of time
atlas_ingest_leases_lost_total           results dropped: their lease was taken over
atlas_circuit_state{host}                 0 closed, 1 half-open, 2 open
atlas_dlq_size                            open dead letters of this replica's sources
atlas_ingest_rate_limit_per_second{host}  current adaptive rate of a host
atlas_ingest_system_load_per_cpu          the load the rate limits adapt to (NaN: unknown)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from math import nan

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from atlas.core.store import Counts
from atlas.httpmetrics import HttpMetrics
from seams.build import export_component_metrics

FETCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RESULTS = ("new", "updated", "unchanged")


class CoreMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        export_component_metrics(r)
        self.items = Counter(
            "atlas_ingest_items",
            "Items stored, by source and result",
            ["source", "result"],
            registry=r,
        )
        self.fetches = Counter(
            "atlas_ingest_fetches",
            "Fetches of sources, by outcome",
            ["source", "status"],
            registry=r,
        )
        self.skipped = Counter(
            "atlas_ingest_entries_skipped",
            "Feed entries not stored: no GUID, link, title or text, or cut off by a truncated feed",
            ["source"],
            registry=r,
        )
        self.fetch_duration = Histogram(
            "atlas_ingest_fetch_duration_seconds",
            "Duration of each HTTP fetch attempt, body included",
            buckets=FETCH_BUCKETS,
            registry=r,
        )
        self.backlog = Gauge(
            "atlas_ingest_backlog", "Sources due for a fetch but not being fetched", registry=r
        )
        self.source_errors = Gauge(
            "atlas_ingest_source_errors",
            "Consecutive failed fetches of a source",
            ["source"],
            registry=r,
        )
        self.stalled = Gauge(
            "atlas_ingest_stalled_sources",
            "Sources whose latest fetch attempt timed out (its deadline: connect, headers, body)",
            registry=r,
        )
        self.leases_lost = Counter(
            "atlas_ingest_leases_lost",
            "Fetched results dropped because their lease expired and another replica took it",
            registry=r,
        )
        self.circuit = Gauge(
            "atlas_circuit_state",
            "Circuit breaker of a host: 0 closed, 1 half-open, 2 open",
            ["host"],
            registry=r,
        )
        self.dlq = Gauge("atlas_dlq_size", "Open entries in the dead-letter queue", registry=r)
        self.rate = Gauge(
            "atlas_ingest_rate_limit_per_second",
            "Current adaptive request rate of a host",
            ["host"],
            registry=r,
        )
        self.load = Gauge(
            "atlas_ingest_system_load_per_cpu",
            "1-minute load average per CPU as the rate limits see it (NaN when unknown)",
            registry=r,
        )
        self.http = HttpMetrics(r)

    def watch_load(self, probe: Callable[[], float | None]) -> None:
        self.load.set_function(lambda: nan if (value := probe()) is None else value)

    def declare_sources(self, errors: dict[str, int], hosts: Iterable[str]) -> None:
        """Give every series of this replica's sources a value from the start."""
        for source, count in errors.items():
            self.source_errors.labels(source).set(count)
            self.skipped.labels(source)
            for result in RESULTS:
                self.items.labels(source, result)
        for host in hosts:
            self.circuit.labels(host).set(0)

    def stored(self, source: str, counts: Counts) -> None:
        self.items.labels(source, "new").inc(counts.new)
        self.items.labels(source, "updated").inc(counts.updated)
        self.items.labels(source, "unchanged").inc(counts.unchanged)
