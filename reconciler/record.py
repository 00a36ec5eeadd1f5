"""Recording: what the reconcile loop did, written down — revision rows and events in
the state database, figures in the metrics. The loop decides; only this module writes.

Some rows must be written as the cycle goes, before the work they describe, so that
a reconcile killed at any point leaves a truthful history: the revision fetched, an
attempt ``applying`` (marked ``interrupted`` by the next run if the process dies).
The rest is written from the cycle's result at the end (``finished``): the metrics,
with the sync status computed by the same rule ``atlas status`` uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler import planfmt
from reconciler.actions import Plan
from reconciler.drift import DriftItem, by_kind
from reconciler.metrics import ReconcilerMetrics
from reconciler.model import Revision
from reconciler.outcomes import Outcome, RevisionOutcome
from reconciler.state import RevisionRecord, StateStore
from reconciler.status import facts, sync_status

Log = Callable[[str, str], None]  # (level, message)
_REASON_MAX = 4000


@dataclass(frozen=True)
class CycleResult:
    """What one cycle (or a rollback) did, and what recording needs to know of it."""

    outcome: Outcome
    revision: str
    reason: str = ""
    plan: Plan | None = None
    drift: tuple[DriftItem, ...] = ()  # found at the start of the cycle
    units: Mapping[str, bool] | None = None  # unit → running, when known
    converged: bool = False  # the host matches the revision it runs
    rolled_back: bool = False  # a rollback was made (successful or not)

    @property
    def ok(self) -> bool:
        return self.outcome.ok

    @property
    def drift_left(self) -> tuple[DriftItem, ...]:
        """Drift still on the host when the cycle ends."""
        return () if self.outcome in (Outcome.APPLIED, Outcome.HEALED) else self.drift

    def as_dict(self) -> dict[str, Any]:
        return {
            "result": self.outcome.value,
            "ok": self.ok,
            "revision": self.revision,
            "reason": self.reason,
            "plan": planfmt.as_dict(self.plan) if self.plan is not None else None,
            "drift": [d.as_dict() for d in self.drift],
        }


@dataclass
class Recorder:
    store: StateStore
    metrics: ReconcilerMetrics
    environment: str
    log: Log

    # ---- as the cycle goes

    def resume(self, pending: Sequence[object]) -> None:
        """A run killed earlier: its attempts become ``interrupted`` (we hold the lock,
        nobody else is applying) and its unfinished actions are noted."""
        for record in self.store.interrupted():
            self.store.finish_revision(
                record.id,
                RevisionOutcome.INTERRUPTED,
                "the reconcile was killed before it finished; the next one completes it",
            )
        if pending:
            self.store.event(
                "warning",
                "interrupted",
                f"a reconcile was interrupted with {len(pending)} action(s) unfinished; finishing",
            )

    def fetched(self, revision: Revision) -> None:
        self.store.set_desired(revision)
        self.store.set_fetch_error(None)

    def fetch_failed(self, error: str) -> None:
        self.metrics.fetch_errors.inc()
        self.store.set_fetch_error(error)
        self.store.event("error", "fetch", error)
        self.log("error", error)

    def invalid(self, revision: Revision, trigger: str, reason: str, errors: int) -> None:
        self.metrics.manifest_errors.set(errors)
        rev = self.store.begin_revision(self.environment, revision, trigger)
        self.store.finish_revision(rev, RevisionOutcome.INVALID, reason[:_REASON_MAX])
        self.store.event(
            "error",
            "invalid",
            f"revision {revision.sha[:12]} is invalid; nothing changed: {reason}",
            revision.sha,
        )
        self.log(
            "error",
            f"revision {revision.sha[:12]} is invalid; the host keeps running the applied revision",
        )

    def valid(self) -> None:
        self.metrics.manifest_errors.set(0)

    def unchanged(self, revision: Revision, trigger: str) -> None:
        """A new revision that needs nothing on this host: applied as it is."""
        rev = self.store.begin_revision(self.environment, revision, trigger)
        self.store.finish_revision(rev, RevisionOutcome.APPLIED, "no changes needed on this host")

    def correcting(self, drift: Sequence[DriftItem], sha: str) -> None:
        what = ", ".join(f"{d.kind} {d.target}" for d in drift[:10]) or "pending actions"
        self.store.event("warning", "drift", f"correcting drift: {what}", sha)

    def begin(self, revision: Revision, trigger: str) -> int:
        """An attempt starts: ``applying`` until ``finish`` (or the next run) says more."""
        return self.store.begin_revision(self.environment, revision, trigger)

    def finish(
        self, rev_id: int, revision: Revision, trigger: str, ok: bool, reason: str, actions: int
    ) -> None:
        outcome = RevisionOutcome.APPLIED if ok else RevisionOutcome.FAILED
        self.store.finish_revision(rev_id, outcome, reason[:_REASON_MAX], actions)
        self.store.event(
            "info" if ok else "error",
            outcome.value,
            f"{trigger}: {revision.sha[:12]} {outcome}: {reason}",
            revision.sha,
        )

    def push_requested(self, reason: str) -> None:
        self.store.event("info", "push", f"reconcile requested by {reason}")

    def no_rollback_target(self, sha: str) -> None:
        self.store.event("error", "rollback", "no healthy revision to roll back to", sha)

    def rolled_back_by_hand(self, current: RevisionRecord, target: RevisionRecord) -> None:
        rev = self.store.begin_revision(self.environment, current.revision, "manual rollback")
        self.store.finish_revision(
            rev, RevisionOutcome.ROLLED_BACK, f"rolled back by hand to {target.sha[:12]}"
        )

    # ---- at the end

    def finished(self, result: CycleResult, duration_s: float | None) -> None:
        """The metrics of a cycle (``duration_s``) or of a rollback by hand (None)."""
        m = self.metrics
        m.set_drift(by_kind(list(result.drift_left)))
        if result.units is not None:
            m.set_units(result.units)
        if result.rolled_back:
            m.rollbacks.inc()
        now = facts(self.store, self.environment, drift=bool(result.drift_left))
        m.set_sync(now.desired or result.revision, now.applied or "", sync_status(now))
        if result.converged:
            m.last_success.set(time.time())
        if duration_s is not None:
            m.reconcile_duration.observe(duration_s)
            m.reconcile_total.labels(result.outcome.metric).inc()
