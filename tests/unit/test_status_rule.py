"""The one sync status rule, and the words recorded, case by case."""

from __future__ import annotations

import pytest

from reconciler.outcomes import METRIC_RESULTS, Outcome, RevisionOutcome, SyncStatus
from reconciler.status import SyncFacts, sync_status

A, B = "a" * 40, "b" * 40


def facts(**kw: object) -> SyncFacts:
    values: dict[str, object] = {
        "desired": A, "applied": A, "desired_broken": False, "drift": False, "fetch_failed": False,
    }  # fmt: skip
    values.update(kw)
    return SyncFacts(**values)  # type: ignore[arg-type]


CASES = [
    ("applied what git says, no drift", facts(), SyncStatus.SYNCED),
    ("nothing applied yet", facts(applied=None), SyncStatus.OUT_OF_SYNC),
    ("nothing fetched or applied yet", facts(desired=None, applied=None), SyncStatus.OUT_OF_SYNC),
    ("a new revision not applied yet", facts(desired=B), SyncStatus.OUT_OF_SYNC),
    ("rolled back by hand to an earlier revision", facts(desired=B), SyncStatus.OUT_OF_SYNC),
    ("drift left uncorrected", facts(drift=True), SyncStatus.OUT_OF_SYNC),
    ("the last fetch failed", facts(fetch_failed=True), SyncStatus.OUT_OF_SYNC),
    ("the desired revision failed and was rolled back", facts(desired=B, desired_broken=True),
     SyncStatus.FAILED),
    ("the desired revision is invalid, nothing applied", facts(applied=None, desired_broken=True),
     SyncStatus.FAILED),
    ("a failed re-apply of the applied revision", facts(desired_broken=True), SyncStatus.FAILED),
    ("failed wins over drift and fetch errors",
     facts(desired=B, desired_broken=True, drift=True, fetch_failed=True), SyncStatus.FAILED),
]  # fmt: skip


@pytest.mark.parametrize(("case", "given", "expected"), CASES, ids=[c[0] for c in CASES])
def test_sync_status(case: str, given: SyncFacts, expected: SyncStatus) -> None:
    assert sync_status(given) is expected, case


@pytest.mark.parametrize(
    ("outcome", "ok", "metric"),
    [
        (Outcome.SYNCED, True, "success"),
        (Outcome.APPLIED, True, "success"),
        (Outcome.HEALED, True, "success"),
        (Outcome.KEPT, True, "success"),
        (Outcome.DRIFT, False, "success"),
        (Outcome.FAILED, False, "failed"),
        (Outcome.ROLLED_BACK, False, "rolled-back"),
        (Outcome.INVALID, False, "invalid"),
        (Outcome.FETCH_FAILED, False, "fetch-failed"),
    ],
)
def test_outcomes_and_their_metric_results(outcome: Outcome, ok: bool, metric: str) -> None:
    assert (outcome.ok, outcome.metric) == (ok, metric)
    assert metric in METRIC_RESULTS


def test_revision_outcomes() -> None:
    healthy = {o for o in RevisionOutcome if o.healthy}
    retried = {o for o in RevisionOutcome if o.retried}
    broken = {o for o in RevisionOutcome if o.broken}
    assert healthy == {RevisionOutcome.APPLIED, RevisionOutcome.UNCHANGED}
    assert broken == {RevisionOutcome.FAILED, RevisionOutcome.INVALID}
    assert RevisionOutcome.ROLLED_BACK not in retried and not broken & retried
    assert RevisionOutcome("applied") is RevisionOutcome.APPLIED  # read back from the database
