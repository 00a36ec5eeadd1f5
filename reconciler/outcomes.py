"""The words the reconciler records and reports, as enums instead of bare strings.

* ``Outcome``: what one reconcile cycle did (``atlas reconcile`` prints it; the
  ``atlas_reconcile_total{result}`` counter counts it by ``Outcome.metric``).
* ``RevisionOutcome``: what became of one attempt at a revision (a row of the state
  database's history, ``atlas history``).
* ``SyncStatus``: how the host stands against the desired revision (``atlas status``
  and ``atlas_sync_info{status}``; computed in one place, ``status.sync_status``).

They are ``StrEnum``s: they compare equal to, print as and serialise to their values.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    SYNCED = "synced"  # nothing to change
    APPLIED = "applied"  # a new revision applied and verified
    HEALED = "healed"  # drift corrected
    DRIFT = "drift"  # drift found and left alone (self-heal off)
    KEPT = "kept"  # the new revision cannot be used; the applied one kept running
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"
    INVALID = "invalid"
    FETCH_FAILED = "fetch-failed"

    @property
    def ok(self) -> bool:
        """The host ends the cycle where the reconciler wants it."""
        return self in (Outcome.SYNCED, Outcome.APPLIED, Outcome.HEALED, Outcome.KEPT)

    @property
    def metric(self) -> str:
        """The ``result`` label of ``atlas_reconcile_total``."""
        return "success" if self.ok or self is Outcome.DRIFT else self.value


METRIC_RESULTS = tuple(dict.fromkeys(o.metric for o in Outcome))


class RevisionOutcome(StrEnum):
    APPLYING = "applying"  # being applied now (or the run was killed: see INTERRUPTED)
    APPLIED = "applied"
    FAILED = "failed"  # failed verification; rolled back
    INVALID = "invalid"  # manifests, secrets or templates wrong; nothing changed
    ROLLED_BACK = "rolled-back"  # rolled back by hand
    UNCHANGED = "unchanged"  # (older state databases) applied with nothing to change
    INTERRUPTED = "interrupted"  # the run was killed; the next one finished its work

    @property
    def healthy(self) -> bool:
        """A revision a rollback may return to."""
        return self in (RevisionOutcome.APPLIED, RevisionOutcome.UNCHANGED)

    @property
    def retried(self) -> bool:
        """Whether a new cycle tries this revision again (not until a new commit if not)."""
        return self not in (
            RevisionOutcome.FAILED,
            RevisionOutcome.INVALID,
            RevisionOutcome.ROLLED_BACK,
        )

    @property
    def broken(self) -> bool:
        """The revision itself cannot be applied (not merely rolled back by hand)."""
        return self in (RevisionOutcome.FAILED, RevisionOutcome.INVALID)


class SyncStatus(StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    FAILED = "Failed"
    UNKNOWN = "Unknown"  # no cycle has ended yet (only the metric says it)
