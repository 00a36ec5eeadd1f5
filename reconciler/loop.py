"""The reconcile loop: the stages in order, once (``cycle``) or forever (``watch``).

One cycle, under the reconcile lock:

1. fetch the ref (an unreachable remote keeps the current state running);
2. a revision that failed before is not retried until a new commit arrives: the
   host is kept at the last applied revision instead;
3. load, validate, build, render (invalid manifests change nothing: the errors are
   recorded and counted);
4. plan through the one planning path (``pipeline.plan_revision``), which adds the
   work an interrupted run still owed;
5. apply, verify the units it touched (rolling batches are verified as they go);
6. a revision that fails verification is recorded as failed and the last revision
   that passed is applied and verified again.

When the fetched revision is the applied one, any plan is drift: it is corrected
when self-heal is on, and only reported otherwise. This module decides; everything
it writes down (history, events, metrics) goes through ``record.Recorder``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from reconciler import pipeline
from reconciler.actions import Action, Plan, UnitAction
from reconciler.apply import Applier
from reconciler.drift import DriftItem, detect
from reconciler.errors import (
    ManifestError,
    ReconcilerError,
    RenderError,
    SecretsError,
    SourceUnavailable,
)
from reconciler.host.lock import reconcile_lock
from reconciler.host.paths import HostLayout
from reconciler.host.probe import HttpProbe
from reconciler.host.releases import ReleaseError, ReleaseInstaller
from reconciler.host.runtime import Runtime, UnitCommandFailed, UnitState
from reconciler.metrics import ReconcilerMetrics
from reconciler.model import Revision
from reconciler.observe import Observed
from reconciler.outcomes import Outcome, RevisionOutcome
from reconciler.record import CycleResult, Log, Recorder
from reconciler.render.desired import HostFacts, RenderContext, UnitSpec
from reconciler.rollout.bluegreen import BlueGreenRollout, RolloutAborted
from reconciler.rollout.replicas import HttpxReplicas, Replicas
from reconciler.secrets.sources import SecretsFor
from reconciler.source import prune_cache
from reconciler.state import RevisionRecord, StateStore
from reconciler.verify import Patience, UnitHealth, Verdict, Waiting, explained, verify
from seams.clock import Clock

__all__ = ["CycleResult", "Host", "Options", "Reconciler"]

SELF_HEAL = "self-heal"


def _secret_values(prepared: pipeline.Prepared) -> list[str]:
    return [v.reveal() for v in prepared.desired.secrets.values() if not v.sealed]


class VerificationFailed(ReconcilerError):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


@dataclass(frozen=True)
class Host:
    """The host a reconciler converges, as it reaches it."""

    layout: HostLayout
    runtime: Runtime
    http: HttpProbe
    clock: Clock
    facts: HostFacts
    releases: ReleaseInstaller | None = None  # installs spec.releases' versions
    replicas: Replicas = field(default_factory=HttpxReplicas)  # blue-green probes them


@dataclass
class Options:
    self_heal: bool = True
    lock_wait: float = 0.0
    stable_for: float = 1.0
    # called after each applied action (the CLI logs it; a test driver can kill here)
    on_action: Callable[[Action], None] | None = None
    # the unit this reconciler runs in (atlas-reconciler.service sets ATLAS_UNIT): its
    # own restart is requested after the run is recorded, never in the middle of it
    self_unit: str | None = None
    # called while verification waits for units (the CLI shows it on a terminal)
    on_wait: Waiting | None = None


class Reconciler:
    def __init__(
        self,
        target: pipeline.Target,
        host: Host,
        store: StateStore,
        secrets: SecretsFor,
        *,
        metrics: ReconcilerMetrics | None = None,
        log: Log | None = None,
        options: Options | None = None,
    ) -> None:
        self.target = target
        self.host = host
        self.ctx = RenderContext(host.layout, host.facts, target.invocation)
        self.store = store
        self.secrets = secrets
        self.metrics = metrics or ReconcilerMetrics()
        self.log: Log = log or (lambda level, message: None)
        self.options = options or Options()
        self.env = target.environment
        self.recorder = Recorder(store, self.metrics, self.env, self.log)
        rollout = BlueGreenRollout(host, store, self.log, self.metrics)
        self.applier = Applier(host.layout, host.runtime, store, host.releases, rollout)
        base = host.layout.on_disk(host.layout.reconciler_dir)
        self.cache: Path = base / "git"
        self.lock_path: Path = base / "lock"
        self.last_cycle_end = host.clock.monotonic()
        # cycles begun: the live drift watcher keeps quiet from here to the cycle's end
        self.started = 0

    # ------------------------------------------------------------------ public

    def cycle(self, trigger: str = "manual", fetch: bool = True) -> CycleResult:
        self.started += 1
        clock = self.host.clock
        started = clock.monotonic()
        with reconcile_lock(self.lock_path, self.options.lock_wait, lambda m: self.log("info", m)):
            try:
                result = self._cycle(trigger, fetch)
            except SourceUnavailable as exc:
                result = CycleResult(Outcome.FETCH_FAILED, "", str(exc))
            self.recorder.finished(result, clock.monotonic() - started)
        self.last_cycle_end = clock.monotonic()
        return result

    def rollback(self, to_sha: str | None = None) -> CycleResult:
        """``atlas rollback``: re-apply the last healthy revision before the current one."""
        with reconcile_lock(self.lock_path, self.options.lock_wait, lambda m: self.log("info", m)):
            current = self.store.last_applied(self.env)
            target = self._rollback_target(current, to_sha)
            if current is not None and current.sha != target.sha:
                self.recorder.rolled_back_by_hand(current, target)
            result = self._apply_revision(target.revision, f"manual rollback to {target.sha[:12]}")
            if result.ok:
                result = replace(result, outcome=Outcome.ROLLED_BACK, rolled_back=True)
            self.recorder.finished(result, None)
            return result

    def watch(
        self,
        stop: threading.Event,
        wake: threading.Event,
        interval: float,
        on_cycle: Callable[[CycleResult], None] | None = None,
    ) -> None:
        """Reconcile until ``stop`` is set: every ``interval`` (±10% jitter) or on ``wake``."""
        trigger = "start"
        while not stop.is_set():
            try:
                result = self.cycle(trigger)
            except ReconcilerError as exc:
                result = CycleResult(Outcome.FAILED, "", str(exc))
                self.log("error", f"reconcile failed: {exc}")
            if on_cycle:
                on_cycle(result)
            timeout = interval * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not crypto
            woke = wake.wait(timeout)
            wake.clear()
            trigger = "push" if woke else "interval"

    # ------------------------------------------------------------------ stages

    def _cycle(self, trigger: str, fetch: bool) -> CycleResult:
        pending = self.store.journal_pending()
        self.recorder.resume(pending)
        try:
            co = pipeline.fetch(self.target, self.cache, do_fetch=fetch, snapshot=True)
        except SourceUnavailable as exc:
            self.recorder.fetch_failed(str(exc))
            kept = self._keep_applied(pending, f"fetch failed: {exc}")
            return replace(kept, outcome=Outcome.FETCH_FAILED, reason=str(exc))
        self.recorder.fetched(co.revision)
        sha = co.revision.sha
        applied = self.store.last_applied(self.env)
        refused = self.store.not_retried(self.env, sha)
        if refused is not None and (applied is None or applied.sha != sha):
            reason = (
                f"revision {sha[:12]} {refused.outcome} earlier ({refused.reason}); "
                "waiting for a new commit"
            )
            kept = self._keep_applied(pending, reason)
            invalid = refused.outcome is RevisionOutcome.INVALID
            outcome = Outcome.INVALID if invalid else Outcome.FAILED
            return replace(kept, outcome=outcome, revision=sha, reason=reason)
        try:
            prepared = pipeline.prepare(co, self.env, self.ctx, self.secrets(self.env))
        except (ManifestError, SecretsError, RenderError) as exc:
            return self._invalid(co.revision, exc, pending, trigger)
        self.recorder.valid()
        new = applied is None or applied.sha != sha
        return self._converge(prepared, trigger if new else SELF_HEAL, pending, new)

    def _invalid(
        self,
        revision: Revision,
        exc: ReconcilerError,
        pending: pipeline.Pending,
        trigger: str,
    ) -> CycleResult:
        problems = exc.problems if isinstance(exc, ManifestError) else []
        reason = (
            f"{len(problems)} manifest error(s): " + "; ".join(str(p) for p in problems[:5])
            if problems
            else str(exc)
        )
        self.recorder.invalid(revision, trigger, reason, len(problems) or 1)
        kept = self._keep_applied(pending, reason)
        return replace(kept, outcome=Outcome.INVALID, revision=revision.sha, reason=reason)

    def _keep_applied(self, pending: pipeline.Pending, reason: str) -> CycleResult:
        """The new revision cannot be used: keep (and heal) the last applied one."""
        applied = self.store.last_applied(self.env)
        if applied is None:
            return CycleResult(Outcome.KEPT, "", reason)
        try:
            co = pipeline.revisit(self.target, applied.revision, self.cache)
            prepared = pipeline.prepare(co, self.env, self.ctx, self.secrets(self.env))
        except ReconcilerError as exc:
            self.log("warning", f"cannot re-read the applied revision {applied.sha[:12]}: {exc}")
            return CycleResult(Outcome.KEPT, applied.sha, reason)
        result = self._converge(prepared, SELF_HEAL, pending, new=False)
        return replace(result, outcome=Outcome.KEPT) if result.outcome is Outcome.SYNCED else result

    def _apply_revision(self, revision: Revision, trigger: str) -> CycleResult:
        co = pipeline.revisit(self.target, revision, self.cache)
        prepared = pipeline.prepare(co, self.env, self.ctx, self.secrets(self.env))
        pending = self.store.journal_pending()
        return self._converge(prepared, trigger, pending, new=True, allow_rollback=False)

    def _converge(
        self,
        prepared: pipeline.Prepared,
        trigger: str,
        pending: pipeline.Pending,
        new: bool,
        allow_rollback: bool = True,
    ) -> CycleResult:
        revision = prepared.checkout.revision
        inventory = self.store.inventory()
        host = pipeline.LiveHost(self.host.layout, self.host.runtime, inventory, pending)
        planned = pipeline.plan_revision(prepared, host)
        plan, observed = planned.plan, planned.observed
        drift = () if new else tuple(detect(inventory, observed, self.store.host_key))
        if plan.empty:
            if pending:
                self.applier.clear_journal()
            checked = self._check_health(prepared, ()) if new else Verdict(True, "no changes")
            if not checked.ok:  # a revision that changed only a health check: its own checks
                checked = explained(checked, self.host.runtime, _secret_values(prepared))
                rev = self.recorder.begin(revision, trigger)
                self.recorder.finish(rev, revision, trigger, False, checked.reason, 0)
                return self._failed(revision, checked.reason, plan, allow_rollback)
            if new:
                self.recorder.unchanged(revision, trigger)
            units = self._unit_health(prepared, observed)
            return CycleResult(
                Outcome.SYNCED, revision.sha, "no changes", plan, drift, units, converged=True
            )
        if not new and not self.options.self_heal:
            why = f"{len(drift)} drifted resource(s); self-heal is off"
            return CycleResult(Outcome.DRIFT, revision.sha, why, plan, drift)
        if not new:
            self.recorder.correcting(drift, revision.sha)
        verdict = self._apply_and_verify(plan, prepared, observed, revision, trigger)
        units = self._unit_health(prepared, None)
        if verdict.ok:
            if new:
                self._prune_cache()
            outcome = Outcome.APPLIED if new else Outcome.HEALED
            return CycleResult(outcome, revision.sha, verdict.reason, plan, drift, units, True)
        return self._failed(revision, verdict.reason, plan, allow_rollback, drift, units)

    def _failed(
        self,
        revision: Revision,
        reason: str,
        plan: Plan,
        allow_rollback: bool,
        drift: tuple[DriftItem, ...] = (),
        units: Mapping[str, bool] | None = None,
    ) -> CycleResult:
        self.log("error", f"revision {revision.sha[:12]} failed verification: {reason}")
        if not allow_rollback:
            return CycleResult(Outcome.FAILED, revision.sha, reason, plan, drift, units)
        return self._rollback_after(revision, reason, plan, units or {})

    def _apply_and_verify(
        self,
        plan: Plan,
        prepared: pipeline.Prepared,
        observed: Observed,
        revision: Revision,
        trigger: str,
    ) -> Verdict:
        rev = self.recorder.begin(revision, trigger)
        specs = {u.name: u for u in prepared.rendered.units}
        deferred: list[UnitAction] = []
        baseline = dict(observed.units or {})

        def check(units: Sequence[str]) -> None:
            verdict = self._verify([specs[u] for u in units if u in specs], baseline)
            if not verdict.ok:
                raise VerificationFailed(verdict)

        try:
            result = self.applier.apply(
                plan,
                prepared.rendered,
                batch_check=check,
                progress=self._progress,
                self_unit=self.options.self_unit,
            )
            deferred = result.deferred
            touched = [specs[u] for u in dict.fromkeys(result.touched_units) if u in specs]
            verdict = self._verify(touched, baseline)
            if verdict.ok:  # and every other unit passes this revision's own checks
                checked = self._check_health(prepared, {u.name for u in touched})
                verdict = verdict if checked.ok else checked
        except VerificationFailed as exc:
            verdict = exc.verdict
        except UnitCommandFailed as exc:
            failed = (UnitHealth(exc.unit, False, str(exc)),) if exc.unit else ()
            verdict = Verdict(False, str(exc), failed)
        except (ReleaseError, RolloutAborted, OSError) as exc:
            verdict = Verdict(False, str(exc))
        if not verdict.ok:
            verdict = explained(verdict, self.host.runtime, _secret_values(prepared))
        self.recorder.finish(rev, revision, trigger, verdict.ok, verdict.reason, len(plan.actions))
        for action in deferred:  # recorded: now the reconciler's service may change
            self.log("info", f"{action.verb} {action.unit} (the reconciler) requested")
            self.host.runtime.request(action.verb, action.unit)
        return verdict

    def _rollback_after(
        self, failed: Revision, reason: str, plan: Plan, units: Mapping[str, bool]
    ) -> CycleResult:
        last = self.store.last_applied(self.env)
        if last is None or last.sha == failed.sha:
            self.recorder.no_rollback_target(failed.sha)
            why = f"{reason}; no healthy revision to roll back to"
            return CycleResult(Outcome.FAILED, failed.sha, why, plan, units=units)
        self.log("warning", f"rolling back to {last.sha[:12]}")
        try:
            back = self._apply_revision(last.revision, f"rollback from {failed.sha[:12]}")
        except ReconcilerError as exc:
            back = CycleResult(Outcome.FAILED, last.sha, str(exc))
        if back.ok:
            outcome, why = Outcome.ROLLED_BACK, f"{reason}; rolled back to {last.sha[:12]}"
        else:
            outcome, why = Outcome.FAILED, f"{reason}; the rollback failed too: {back.reason}"
        return CycleResult(
            outcome,
            failed.sha,
            why,
            plan,
            units=back.units or units,
            converged=back.converged,
            rolled_back=True,
        )

    def _rollback_target(
        self, current: RevisionRecord | None, to_sha: str | None
    ) -> RevisionRecord:
        candidates = self.store.healthy(self.env)
        current_sha = current.sha if current is not None else None
        if to_sha:
            found = next((r for r in candidates if r.sha.startswith(to_sha)), None)
            if found is None:
                raise ReconcilerError(
                    f"no applied revision {to_sha!r} in the history of {self.env!r}"
                )
            return found
        found = next((r for r in candidates if r.sha != current_sha), None)
        if found is None:
            raise ReconcilerError(f"no earlier healthy revision of {self.env!r} to roll back to")
        return found

    # ------------------------------------------------------------------ helpers

    def _prune_cache(self, keep_revisions: int = 20) -> None:
        """Keep the trees of the revisions a rollback may return to; drop the rest."""
        applied = [r.sha for r in self.store.healthy(self.env)]
        prune_cache(self.cache, set(list(dict.fromkeys(applied))[:keep_revisions]))

    def _progress(self, action: Action) -> None:
        self.log("info", f"{action.verb} {action.target}".rstrip())
        if self.options.on_action is not None:
            self.options.on_action(action)

    def _verify(self, specs: list[UnitSpec], baseline: Mapping[str, UnitState]) -> Verdict:
        return verify(
            specs,
            self.host.runtime,
            self.host.http,
            self.host.clock,
            baseline=baseline,
            patience=Patience(stable_for=self.options.stable_for),
            on_wait=self.options.on_wait,
        )

    def _check_health(self, prepared: pipeline.Prepared, skip: Collection[str]) -> Verdict:
        """The health checks of the running units that were not touched (so not verified
        already): a revision is judged by its own checks even when it restarts nothing."""
        specs = [
            u
            for u in prepared.rendered.units
            if u.start and u.probe is not None and u.component != "reconciler"
            and u.name not in skip
        ]  # fmt: skip
        return verify(
            specs,
            self.host.runtime,
            self.host.http,
            self.host.clock,
            patience=Patience(stable_for=0.0),
            on_wait=self.options.on_wait,
        )

    def _unit_health(
        self, prepared: pipeline.Prepared, observed: Observed | None
    ) -> dict[str, bool]:
        names = [u.name for u in prepared.rendered.units if u.start]
        states = (
            observed.units
            if observed is not None and observed.units is not None
            else self.host.runtime.unit_states(names)
        )
        return {n: states[n].running if n in states else False for n in names}
