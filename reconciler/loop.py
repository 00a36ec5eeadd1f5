"""The reconcile loop: the stages in order, once (``cycle``) or forever (``watch``).

One cycle, under the reconcile lock:

1. fetch the ref (an unreachable remote keeps the current state running);
2. a revision that failed before is not retried until a new commit arrives: the
   host is kept at the last applied revision instead;
3. load, validate, build, render (invalid manifests change nothing: the errors are
   recorded and counted);
4. observe and plan, adding restarts owed by an interrupted run (the journal);
5. apply, verify the units it touched (rolling batches are verified as they go);
6. record the outcome; a revision that fails verification is recorded as failed and
   the last revision that passed is applied and verified again.

When the fetched revision is the applied one, any plan is drift: it is corrected
when self-heal is on, and only reported otherwise.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler import pipeline
from reconciler.apply import Applier, carried_over
from reconciler.drift import DriftItem, by_kind, detect
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
from reconciler.host.runtime import Runtime, UnitCommandFailed, UnitState
from reconciler.metrics import ReconcilerMetrics
from reconciler.model import Revision
from reconciler.observe import Observed, observe
from reconciler.plan import Action, Plan, UnitAction
from reconciler.render.desired import RenderContext, Rendered, UnitSpec
from reconciler.secrets.sources import SecretsSource
from reconciler.source import Checkout, prune_cache, tree_of
from reconciler.state import RevisionRecord, StateStore
from reconciler.verify import Verdict, verify
from seams.clock import Clock

Log = Callable[[str, str], None]  # (level, message)
Pending = tuple[str, int, dict[str, Any]]  # journal rows: (run, seq, action)


class VerificationFailed(ReconcilerError):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.reason)
        self.verdict = verdict


@dataclass
class CycleResult:
    # synced | applied | healed | drift | failed | rolled-back | invalid | fetch-failed | kept
    result: str
    revision: str
    reason: str = ""
    plan: Plan | None = None
    drift: list[DriftItem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.result in ("synced", "applied", "healed", "kept")


@dataclass
class Options:
    self_heal: bool = True
    lock_wait: float = 0.0
    stable_for: float = 1.0
    # called after each applied action (the CLI logs it; a debugging aid can kill here)
    on_action: Callable[[Action], None] | None = None
    # the unit this reconciler runs in (atlas-reconciler.service sets ATLAS_UNIT): its
    # own restart is requested after the run is recorded, never in the middle of it
    self_unit: str | None = None


class Reconciler:
    def __init__(
        self,
        target: pipeline.Target,
        ctx: RenderContext,
        runtime: Runtime,
        store: StateStore,
        secrets: Callable[[str], SecretsSource | None],
        http: HttpProbe,
        clock: Clock,
        metrics: ReconcilerMetrics | None = None,
        log: Log | None = None,
        options: Options | None = None,
    ) -> None:
        self.target = target
        self.ctx = ctx
        self.layout = ctx.layout
        self.runtime = runtime
        self.store = store
        self.secrets = secrets
        self.http = http
        self.clock = clock
        self.metrics = metrics or ReconcilerMetrics()
        self.log: Log = log or (lambda level, message: None)
        self.options = options or Options()
        base = self.layout.on_disk(self.layout.reconciler_dir)
        self.cache = base / "git"
        self.lock_path = base / "lock"
        self.env = target.environment
        self.last_cycle_end = time.monotonic()

    # ------------------------------------------------------------------ public

    def cycle(self, trigger: str = "manual", fetch: bool = True) -> CycleResult:
        started = time.monotonic()
        with reconcile_lock(self.lock_path, self.options.lock_wait, lambda m: self.log("info", m)):
            try:
                result = self._cycle(trigger, fetch)
            except SourceUnavailable as exc:
                result = CycleResult("fetch-failed", "", str(exc))
        self.metrics.reconcile_duration.observe(time.monotonic() - started)
        self.metrics.reconcile_total.labels(_metric_result(result)).inc()
        self.last_cycle_end = time.monotonic()
        return result

    def rollback(self, to_sha: str | None = None) -> CycleResult:
        """``atlas rollback``: re-apply the last healthy revision before the current one."""
        with reconcile_lock(self.lock_path, self.options.lock_wait, lambda m: self.log("info", m)):
            current = self.store.last_applied(self.env)
            candidates = [
                r
                for r in self.store.history(self.env, limit=500)
                if r.outcome in ("applied", "unchanged")
            ]
            if to_sha:
                target = next((r for r in candidates if r.sha.startswith(to_sha)), None)
                if target is None:
                    raise ReconcilerError(
                        f"no applied revision {to_sha!r} in the history of {self.env!r}"
                    )
            else:
                target = next(
                    (r for r in candidates if current is None or r.sha != current.sha), None
                )
                if target is None:
                    raise ReconcilerError(
                        f"no earlier healthy revision of {self.env!r} to roll back to"
                    )
            if current is not None and current.sha != target.sha:
                rev = self.store.begin_revision(self.env, current.revision, "manual rollback")
                self.store.finish_revision(
                    rev, "rolled-back", f"rolled back by hand to {target.sha[:12]}"
                )
            result = self._apply_revision(target.revision, f"manual rollback to {target.sha[:12]}")
            if result.ok:
                self.metrics.rollbacks.inc()
                result.result = "rolled-back"
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
                result = CycleResult("failed", "", str(exc))
                self.log("error", f"reconcile failed: {exc}")
            if on_cycle:
                on_cycle(result)
            timeout = interval * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not crypto
            woke = wake.wait(timeout)
            wake.clear()
            trigger = "push" if woke else "interval"

    # ------------------------------------------------------------------ stages

    def _cycle(self, trigger: str, fetch: bool) -> CycleResult:
        env = self.env
        pending = self.store.journal_pending()
        for record in self.store.interrupted():  # we hold the lock: nobody is applying
            self.store.finish_revision(
                record.id,
                "interrupted",
                "the reconcile was killed before it finished; the next one completes it",
            )
        if pending:
            self.store.event(
                "warning",
                "interrupted",
                f"a reconcile was interrupted with {len(pending)} action(s) unfinished; finishing",
            )
        try:
            co = pipeline.fetch(self.target, self.cache, do_fetch=fetch, snapshot=True)
        except SourceUnavailable as exc:
            self.metrics.fetch_errors.inc()
            self.store.event("error", "fetch", str(exc))
            self.log("error", str(exc))
            kept = self._keep_applied(pending, f"fetch failed: {exc}")
            return CycleResult("fetch-failed", kept.revision, str(exc), kept.plan, kept.drift)
        sha = co.revision.sha
        self.store.put(
            "desired_revision", {"sha": sha, "ref": co.revision.ref, "subject": co.revision.subject}
        )
        applied = self.store.last_applied(env)
        failed = self.store.is_failed(env, sha)
        if failed is not None and (applied is None or applied.sha != sha):
            reason = (
                f"revision {sha[:12]} {failed.outcome} earlier ({failed.reason}); "
                "waiting for a new commit"
            )
            kept = self._keep_applied(pending, reason, status="Failed")
            return CycleResult(
                "failed" if failed.outcome != "invalid" else "invalid",
                sha,
                reason,
                kept.plan,
                kept.drift,
            )
        try:
            prepared = pipeline.prepare_checkout(co, env, self.ctx, self.secrets(env))
        except (ManifestError, SecretsError, RenderError) as exc:
            return self._invalid(co, exc, pending, trigger)
        self.metrics.manifest_errors.set(0)
        new = applied is None or applied.sha != sha
        return self._converge(prepared, trigger if new else "self-heal", pending, new)

    def _invalid(
        self, co: Checkout, exc: ReconcilerError, pending: list[Pending], trigger: str
    ) -> CycleResult:
        problems = exc.problems if isinstance(exc, ManifestError) else []
        reason = (
            f"{len(problems)} manifest error(s): " + "; ".join(str(p) for p in problems[:5])
            if problems
            else str(exc)
        )
        self.metrics.manifest_errors.set(len(problems) or 1)
        rev = self.store.begin_revision(self.env, co.revision, trigger)
        self.store.finish_revision(rev, "invalid", reason[:4000])
        self.store.event(
            "error",
            "invalid",
            f"revision {co.revision.sha[:12]} is invalid; nothing changed: {reason}",
            co.revision.sha,
        )
        self.log(
            "error",
            f"revision {co.revision.sha[:12]} is invalid; "
            "the host keeps running the applied revision",
        )
        kept = self._keep_applied(pending, reason, status="Failed")
        return CycleResult("invalid", co.revision.sha, reason, kept.plan, kept.drift)

    def _keep_applied(
        self, pending: list[Pending], reason: str, status: str = "OutOfSync"
    ) -> CycleResult:
        """The new revision cannot be used: keep (and heal) the last applied one."""
        applied = self.store.last_applied(self.env)
        desired = self.store.get("desired_revision", {}).get("sha", "")
        if applied is None:
            self.metrics.set_sync(desired, "", status)
            return CycleResult("kept", "", reason)
        try:
            tree = tree_of(self.target.repo, applied.revision, self.target.path, self.cache)
            prepared = pipeline.prepare_checkout(
                Checkout(tree, applied.revision), self.env, self.ctx, self.secrets(self.env)
            )
        except ReconcilerError as exc:
            self.log("warning", f"cannot re-read the applied revision {applied.sha[:12]}: {exc}")
            self.metrics.set_sync(desired, applied.sha, status)
            return CycleResult("kept", applied.sha, reason)
        result = self._converge(prepared, "self-heal", pending, new=False, status_if_synced=status)
        if result.result == "synced":
            result.result = "kept"
        return result

    def _apply_revision(self, revision: Revision, trigger: str) -> CycleResult:
        tree = tree_of(self.target.repo, revision, self.target.path, self.cache)
        prepared = pipeline.prepare_checkout(
            Checkout(tree, revision), self.env, self.ctx, self.secrets(self.env)
        )
        return self._converge(
            prepared, trigger, self.store.journal_pending(), new=True, allow_rollback=False
        )

    def _converge(
        self,
        prepared: pipeline.Prepared,
        trigger: str,
        pending: list[Pending],
        new: bool,
        allow_rollback: bool = True,
        status_if_synced: str = "Synced",
    ) -> CycleResult:
        revision = prepared.checkout.revision
        inventory = self.store.inventory()
        plan, observed = pipeline.plan_for(prepared, self.ctx, inventory, self.runtime)
        plan = carried_over(plan, [record for _, _, record in pending], prepared.rendered)
        drift = [] if new else detect(inventory, observed, self.store.host_key)
        self.metrics.set_drift(by_kind(drift))
        desired = self.store.get("desired_revision", {}).get("sha", revision.sha)
        if plan.empty:
            if pending:
                self.store.journal_clear()
            if new:
                rev = self.store.begin_revision(self.env, revision, trigger)
                self.store.finish_revision(rev, "applied", "no changes needed on this host")
            self._healthy_units(prepared.rendered.units, observed)
            self.metrics.set_sync(desired, revision.sha, status_if_synced)
            self.metrics.last_success.set(time.time())
            return CycleResult("synced", revision.sha, "no changes", plan, drift)
        if not new and not self.options.self_heal:
            self.metrics.set_sync(desired, revision.sha, "OutOfSync")
            self.store.put("drift", [d.as_dict() for d in drift])
            return CycleResult(
                "drift",
                revision.sha,
                f"{len(drift)} drifted resource(s); self-heal is off",
                plan,
                drift,
            )
        if not new:
            self.store.event(
                "warning",
                "drift",
                "correcting drift: " + ", ".join(f"{d.kind} {d.target}" for d in drift[:10])
                or "pending actions",
                revision.sha,
            )
        verdict = self._apply_and_verify(plan, prepared, observed, revision, trigger)
        self._healthy_units(prepared.rendered.units, None)
        if verdict.ok:
            if new:
                self._prune_cache()
            self.store.put("drift", [])
            self.metrics.set_drift(by_kind([]))
            self.metrics.set_sync(desired, revision.sha, status_if_synced)
            self.metrics.last_success.set(time.time())
            return CycleResult(
                "applied" if new else "healed", revision.sha, verdict.reason, plan, drift
            )
        self.log("error", f"revision {revision.sha[:12]} failed verification: {verdict.reason}")
        if not allow_rollback:
            self.metrics.set_sync(desired, revision.sha, "Failed")
            return CycleResult("failed", revision.sha, verdict.reason, plan, drift)
        return self._rollback_after(revision, verdict.reason, plan)

    def _apply_and_verify(
        self,
        plan: Plan,
        prepared: pipeline.Prepared,
        observed: Observed,
        revision: Revision,
        trigger: str,
    ) -> Verdict:
        rev = self.store.begin_revision(self.env, revision, trigger)
        specs = {u.name: u for u in prepared.rendered.units}
        deferred: list[UnitAction] = []
        baseline = dict(observed.units or {})

        def check(units: Sequence[str]) -> None:
            verdict = self._verify([specs[u] for u in units if u in specs], baseline)
            if not verdict.ok:
                raise VerificationFailed(verdict)

        try:
            result = Applier(self.layout, self.runtime, self.store).apply(
                plan,
                prepared.rendered,
                batch_check=check,
                progress=self._progress,
                self_unit=self.options.self_unit,
            )
            deferred = result.deferred
            touched = [specs[u] for u in dict.fromkeys(result.touched_units) if u in specs]
            verdict = self._verify(touched, baseline)
        except VerificationFailed as exc:
            verdict = exc.verdict
        except (UnitCommandFailed, OSError) as exc:
            verdict = Verdict(False, str(exc))
        outcome = "applied" if verdict.ok else "failed"
        self.store.finish_revision(rev, outcome, verdict.reason[:4000], len(plan.actions))
        self.store.event(
            "info" if verdict.ok else "error",
            outcome,
            f"{trigger}: {revision.sha[:12]} {outcome}: {verdict.reason}",
            revision.sha,
        )
        for action in deferred:  # recorded: now this reconciler may be restarted
            self.log("info", f"{action.verb} {action.unit} (this reconciler) requested")
            self.runtime.restart_later(action.unit)
        return verdict

    def _prune_cache(self, keep_revisions: int = 20) -> None:
        """Keep the trees of the revisions a rollback may return to; drop the rest."""
        applied = [
            r.sha
            for r in self.store.history(self.env, limit=500)
            if r.outcome in ("applied", "unchanged")
        ]
        prune_cache(self.cache, set(list(dict.fromkeys(applied))[:keep_revisions]))

    def _progress(self, action: Action) -> None:
        self.log("info", f"{action.verb} {action.target}".rstrip())
        if self.options.on_action is not None:
            self.options.on_action(action)

    def _verify(self, specs: list[UnitSpec], baseline: Mapping[str, UnitState]) -> Verdict:
        return verify(
            specs,
            self.runtime,
            self.http,
            self.clock,
            baseline=baseline,
            stable_for=self.options.stable_for,
        )

    def _rollback_after(self, failed: Revision, reason: str, plan: Plan) -> CycleResult:
        last: RevisionRecord | None = self.store.last_applied(self.env)
        desired = self.store.get("desired_revision", {}).get("sha", failed.sha)
        if last is None or last.sha == failed.sha:
            self.store.event("error", "rollback", "no healthy revision to roll back to", failed.sha)
            self.metrics.set_sync(desired, "", "Failed")
            return CycleResult(
                "failed", failed.sha, f"{reason}; no healthy revision to roll back to", plan
            )
        self.log("warning", f"rolling back to {last.sha[:12]}")
        try:
            back = self._apply_revision(last.revision, f"rollback from {failed.sha[:12]}")
        except ReconcilerError as exc:
            back = CycleResult("failed", last.sha, str(exc))
        self.metrics.rollbacks.inc()
        self.metrics.set_sync(desired, last.sha, "Failed")
        if back.ok:
            return CycleResult(
                "rolled-back", failed.sha, f"{reason}; rolled back to {last.sha[:12]}", plan
            )
        return CycleResult(
            "failed", failed.sha, f"{reason}; the rollback failed too: {back.reason}", plan
        )

    def _healthy_units(self, specs: tuple[UnitSpec, ...], observed: Observed | None) -> None:
        names = [u.name for u in specs if u.start]
        states = (
            observed.units
            if observed is not None and observed.units is not None
            else self.runtime.unit_states(names)
        )
        self.metrics.set_units({n: states[n].running if n in states else False for n in names})


def _metric_result(result: CycleResult) -> str:
    return {
        "synced": "success",
        "applied": "success",
        "healed": "success",
        "kept": "success",
        "drift": "success",
    }.get(result.result, result.result)


def observe_for_status(
    layout: HostLayout, store: StateStore, runtime: Runtime | None
) -> tuple[Observed, list[DriftItem]]:
    """The host as ``atlas status`` shows it: inventory paths and units, and drift."""
    inventory = store.inventory()
    observed = observe(layout, Rendered((), (), ()), inventory, runtime)
    return observed, detect(inventory, observed, store.host_key)
