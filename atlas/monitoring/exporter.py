"""The agent's own ``/metrics``: everything it collects, plus alert and delivery state.

A per-process ``CollectorRegistry`` holds ``ViewCollector`` — which turns the latest
``ExportView`` (swapped in whole by the agent after each cycle, so a scrape never
sees half a cycle) into metric families — the ``atlas_notifications_total``
counter, and the standard process metrics. The components' own series are not
re-exported: Prometheus scrapes them directly, and a copy would double every sum.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from atlas.monitoring.rules import Alert, Rule
from atlas.monitoring.samples import Sample
from seams.build import export_component_metrics

HELP = {
    "atlas_system_cpu_ratio": "CPU utilisation of the host over the last interval, 0 to 1.",
    "atlas_system_cpu_percent": "Deprecated (removed next release): use atlas_system_cpu_ratio.",
    "atlas_system_cpus": "Logical CPUs of the host.",
    "atlas_system_load_average": "Load average of the host over the window.",
    "atlas_system_memory_total_bytes": "Physical memory of the host.",
    "atlas_system_memory_available_bytes": "Memory available to new processes without swapping.",
    "atlas_system_memory_used_ratio": "Share of memory in use (not available), 0 to 1.",
    "atlas_system_memory_used_percent": "Deprecated: use atlas_system_memory_used_ratio.",
    "atlas_system_swap_total_bytes": "Swap space of the host.",
    "atlas_system_swap_used_bytes": "Swap space in use.",
    "atlas_system_swap_used_ratio": "Share of swap space in use, 0 to 1.",
    "atlas_system_swap_used_percent": "Deprecated: use atlas_system_swap_used_ratio.",
    "atlas_system_disk_total_bytes": "Size of the file system mounted at mount.",
    "atlas_system_disk_free_bytes": "Free space of the file system mounted at mount.",
    "atlas_system_disk_used_ratio": "Share of space in use on the file system at mount, 0 to 1.",
    "atlas_system_disk_used_percent": "Deprecated: use atlas_system_disk_used_ratio.",
    "atlas_system_disk_read_bytes": "Bytes read from the block device of the mount.",
    "atlas_system_disk_written_bytes": "Bytes written to the block device of the mount.",
    "atlas_system_disk_reads": "Completed reads of the block device of the mount.",
    "atlas_system_disk_writes": "Completed writes of the block device of the mount.",
    "atlas_system_network_receive_bytes": "Bytes received on the interface.",
    "atlas_system_network_transmit_bytes": "Bytes sent on the interface.",
    "atlas_system_network_receive_errors": "Receive errors on the interface.",
    "atlas_system_network_transmit_errors": "Transmit errors on the interface.",
    "atlas_process_open_fds": "Open file descriptors of the main process of an Atlas unit.",
    "atlas_process_max_fds": "Soft limit of open file descriptors of that process.",
    "atlas_process_resident_memory_bytes": "Resident memory of the main process of an Atlas unit.",
    "atlas_process_cpu_seconds": "CPU time used by the main process of an Atlas unit.",
    "atlas_component_up": "1 when the component's units run and its health check passes.",
    "atlas_component_unit_active": "1 when the unit is active.",
    "atlas_component_job_succeeded": "1 when the component's oneshot job last succeeded.",
    "atlas_component_health_up": "1 when the health endpoint answered 2xx in time.",
    "atlas_component_health_duration_seconds": "How long the last health check took.",
    "atlas_component_scrape_up": "1 when the component's /metrics was scraped and parsed.",
    "atlas_component_scrape_duration_seconds": "How long the last scrape took.",
    "atlas_component_scrape_samples": "Samples in the component's last scrape.",
    "atlas_component_http_requests_per_second": "HTTP requests per second over the last interval.",
    "atlas_component_http_errors_per_second": "HTTP 5xx answers per second lately.",
    "atlas_component_http_error_ratio": "Share of HTTP requests answered 5xx lately.",
    "atlas_component_http_request_duration_seconds": "HTTP latency quantile lately.",
    "atlas_component_ingest_items_per_second": "Items ingested per second over the last interval.",
    "atlas_component_ingest_success_ratio": "Share of ingestion results that were not failures.",
    "atlas_component_ingest_fetch_duration_seconds": "Fetch latency quantile lately.",
    "atlas_component_ingest_backlog": "Sources due but not yet fetched.",
    "atlas_component_dlq_size": "Entries in the dead-letter queue.",
    "atlas_component_circuit_state": "Circuit breaker per host: 0 closed, 1 half-open, 2 open.",
    "atlas_component_circuits_open": "Circuit breakers currently open.",
    "atlas_alert_active": "Active alerts of a rule by state (pending, firing).",
    "atlas_alert_rule_nodata": "1 while no series matches the rule's selector (no data).",
    "atlas_alert_rules": "Alert rules loaded.",
    "atlas_notifications_pending": "Notifications waiting in the outbox for the channel.",
    "atlas_maintenance_active": "1 while maintenance mode silences notifications.",
    "atlas_monitor_collection_duration_seconds": "How long the last collection took.",
    "atlas_monitor_evaluation_duration_seconds": "How long the last rule evaluation took.",
    "atlas_monitor_last_cycle_timestamp_seconds": "When the last collection and evaluation ended.",
    "atlas_monitor_config_reload_success": "1 if the last reload of rules and channels worked.",
    "atlas_monitor_config_reload_timestamp_seconds": "When rules and channels were last loaded.",
}


@dataclass(frozen=True)
class ExportView:
    samples: Sequence[Sample] = ()
    rules: Sequence[Rule] = ()
    alerts: Mapping[str, Alert] = field(default_factory=dict)
    nodata: Mapping[str, float] = field(default_factory=dict)
    pending: Mapping[str, int] = field(default_factory=dict)
    channels: Sequence[str] = ()
    maintenance: bool = False
    collection_s: float = 0.0
    evaluation_s: float = 0.0
    last_cycle_at: float = 0.0
    reload_ok: bool = True
    reload_at: float = 0.0


# Latency quantiles over the last interval: summaries (quantiles only, no _sum/_count,
# which would have to be cumulative counters).
SUMMARIES = frozenset(
    {
        "atlas_component_http_request_duration_seconds",
        "atlas_component_ingest_fetch_duration_seconds",
    }
)


def _family(name: str) -> tuple[str, str]:
    """(family name, type) of a sample name: ``*_total`` are counters."""
    if name in SUMMARIES:
        return name, "summary"
    if name.endswith("_total"):
        return name[: -len("_total")], "counter"
    return name, "gauge"


class ViewCollector(Collector):
    def __init__(self) -> None:
        self._view = ExportView()
        self._lock = threading.Lock()

    def set(self, view: ExportView) -> None:
        with self._lock:
            self._view = view

    @property
    def view(self) -> ExportView:
        with self._lock:
            return self._view

    def collect(self) -> Iterator[Metric]:
        v = self.view
        families: dict[str, Metric] = {}

        def add(name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
            fam_name, kind = _family(name)
            fam = families.get(fam_name)
            if fam is None:
                doc = HELP.get(fam_name, f"Atlas monitoring: {fam_name}.")
                fam = families[fam_name] = Metric(fam_name, doc, kind)
            fam.add_sample(name, dict(labels or {}), value)

        for s in v.samples:
            add(s.name, s.value, dict(s.labels))
        counts: dict[tuple[str, str, str], int] = {}
        for r in v.rules:
            for state in ("pending", "firing"):
                counts[(r.name, r.severity, state)] = 0
        for a in v.alerts.values():
            key = (a.rule, a.severity, a.state)
            counts[key] = counts.get(key, 0) + 1
        for (rule, severity, state), n in sorted(counts.items()):
            add("atlas_alert_active", n, {"alertname": rule, "severity": severity, "state": state})
        for r in v.rules:
            add("atlas_alert_rule_nodata", int(r.name in v.nodata), {"alertname": r.name})
        add("atlas_alert_rules", len(v.rules))
        for ch in sorted(set(v.channels) | set(v.pending)):
            add("atlas_notifications_pending", v.pending.get(ch, 0), {"channel": ch})
        add("atlas_maintenance_active", int(v.maintenance))
        add("atlas_monitor_collection_duration_seconds", v.collection_s)
        add("atlas_monitor_evaluation_duration_seconds", v.evaluation_s)
        add("atlas_monitor_last_cycle_timestamp_seconds", v.last_cycle_at)
        add("atlas_monitor_config_reload_success", int(v.reload_ok))
        add("atlas_monitor_config_reload_timestamp_seconds", v.reload_at)
        yield from families.values()


class Exporter:
    """The registry behind ``/metrics`` and the handles the agent updates."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.view = ViewCollector()
        self.registry.register(self.view)
        export_component_metrics(self.registry)
        self.notifications = Counter(
            "atlas_notifications",
            "Notification delivery attempts by channel and result "
            "(success, retry, failed, suppressed).",
            ["channel", "result"],
            registry=self.registry,
        )

    def count(self, channel: str, result: str) -> None:
        self.notifications.labels(channel=channel, result=result).inc()

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
