"""The reconciler's Prometheus metrics (one registry per process, no globals)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from reconciler.outcomes import METRIC_RESULTS, SyncStatus
from seams.build import export_component_metrics

ROLLOUT_PHASES = (
    "install", "start", "analysis", "paused", "promote", "switch", "abort", "completed", "aborted",
)  # fmt: skip


class ReconcilerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        export_component_metrics(r)
        self.reconcile_total = Counter(
            "atlas_reconcile", "Reconcile cycles by result.", ["result"], registry=r
        )
        self.reconcile_duration = Histogram(
            "atlas_reconcile_duration_seconds",
            "Duration of reconcile cycles.",
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
        )
        self.sync_info = Gauge(
            "atlas_sync_info",
            "Desired and applied revision and the sync status (value 1).",
            ["desired_revision", "applied_revision", "status"],
            registry=r,
        )
        self.drift = Gauge(
            "atlas_drift_resources",
            "Resources that drifted from the applied state.",
            ["kind"],
            registry=r,
        )
        self.live_drift = Counter(
            "atlas_live_drift",
            "Drifted resources the live watcher saw between polls (each woke the loop).",
            ["kind"],
            registry=r,
        )
        self.last_success = Gauge(
            "atlas_last_successful_reconcile_timestamp_seconds",
            "When a reconcile last ended with the host in the desired state.",
            registry=r,
        )
        self.rollbacks = Counter(
            "atlas_rollbacks", "Rollbacks to the last healthy revision.", registry=r
        )
        self.unit_healthy = Gauge(
            "atlas_unit_healthy", "1 if the unit is active and healthy.", ["unit"], registry=r
        )
        self.manifest_errors = Gauge(
            "atlas_manifest_errors", "Validation errors in the latest fetched revision.", registry=r
        )
        self.fetch_errors = Counter(
            "atlas_git_fetch_errors", "Failed fetches of the repository.", registry=r
        )
        self.rollout_phase = Gauge(
            "atlas_rollout_phase",
            "1 for the phase a Deployment's rollout is in (or ended in), 0 for the others.",
            ["deployment", "phase"],
            registry=r,
        )
        self.rollouts_total = Counter(
            "atlas_rollouts", "Rollouts by result.", ["deployment", "result"], registry=r
        )
        self.rollout_weight = Gauge(
            "atlas_rollout_weight",
            "Percent of a Deployment's replicas on the shared port that run the new version.",
            ["deployment"],
            registry=r,
        )
        self._sync: tuple[str, str, str] | None = None
        # present from the first scrape: an alert on it never waits for a first cycle
        self.set_sync("", "", SyncStatus.UNKNOWN)
        self._units: set[str] = set()
        for result in METRIC_RESULTS:
            self.reconcile_total.labels(result)

    def set_sync(self, desired: str, applied: str, status: SyncStatus) -> None:
        labels = (desired[:12], applied[:12], status.value)
        if self._sync is not None and self._sync != labels:
            self.sync_info.remove(*self._sync)
        self.sync_info.labels(*labels).set(1)
        self._sync = labels

    def set_drift(self, counts: Mapping[str, int]) -> None:
        for kind, n in counts.items():
            self.drift.labels(kind).set(n)

    def set_units(self, healthy: Mapping[str, bool]) -> None:
        for gone in self._units - set(healthy):
            self.unit_healthy.remove(gone)
        for unit, ok in healthy.items():
            self.unit_healthy.labels(unit).set(1 if ok else 0)
        self._units = set(healthy)

    def set_rollout(self, deployment: str, phase: str, weight: float) -> None:
        for known in ROLLOUT_PHASES:
            self.rollout_phase.labels(deployment, known).set(1 if known == phase else 0)
        self.rollout_weight.labels(deployment).set(weight)
        if phase in ("completed", "aborted"):
            self.rollouts_total.labels(deployment, phase).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
