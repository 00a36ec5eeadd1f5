"""Blue-green for the replicas of a listening template unit (the API), on one host.

The stable replicas are ``atlas-api@1`` … ``@N``; the new version's are started beside
them as ``@N+1`` … ``@2N`` from the same (already rewritten) template, on the same
SO_REUSEPORT port. A blueGreen replica joins the shared port only once it is ready
(``atlas.api.server.wait_until_ready``), so a version that fails readiness never gets a
connection; every replica also answers on its own preview port (``previewPort + n -
1``), where the rollout probes and measures it alone. The steps:

1. start the new replicas (without blocking) and wait for each to answer ready on
   its preview port within the health check's timeout;
2. pre-promotion analysis: ``count`` windows of ``interval``, each new replica's
   request metrics against the stable ones' over the same window
   (``reconciler.analysis``), topping a window up with synthetic requests
   (``GET /v1/items``, ``/readyz``) when real traffic is below ``minRequests``;
3. promote: after ``scaleDownDelay`` the stable replicas are restarted one by one on
   the new version (each stops draining: the kernel hands the connections queued on
   its closing listener to the others, ``tcp_migrate_req``; uvicorn finishes the
   requests in flight) and each must answer ready again;
4. the new replicas ``@N+1`` … stop (draining the same way): the unit names the
   manifests render are kept, so planning stays a pure function of the manifests.

Any failure aborts: the new replicas stop, the stable ones (never touched before
step 3) keep serving the old version, the rollout is recorded ``aborted`` with its
reason and ``RolloutAborted`` fails the revision, which the loop records as failed
(not retried until a new commit) and rolls back from. Every phase is recorded in the
state database as it begins (``rollout:<deployment>``), so ``atlas rollout status``
shows it and a run killed mid-rollout leaves a record; the next run stops the new
replicas it finds before starting again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler import analysis
from reconciler.errors import PermanentError
from reconciler.host.runtime import Runtime, UnitCommandFailed
from reconciler.metrics import ReconcilerMetrics
from reconciler.model import Analysis, BlueGreen
from reconciler.render.desired import UnitSpec
from reconciler.rollout.replicas import Replicas, enable_request_migration
from reconciler.state import StateStore
from seams.clock import Clock

SYNTHETIC = ("/v1/items?limit=1", "/readyz")
PROBE_TIMEOUT_S = 2.0
POLL_S = 0.25


class RolloutAborted(PermanentError):
    """A blue-green rollout failed and was rolled back to the stable replicas."""


@dataclass(frozen=True)
class Target:
    """One blueGreen Deployment's template, as rendered."""

    deployment: str
    template: str  # atlas-api@.service
    replicas: int
    version: str
    strategy: BlueGreen
    health_path: str
    ready_timeout_s: float

    def unit(self, n: int) -> str:
        return self.template.replace("@.", f"@{n}.")

    def port(self, n: int) -> int:
        return self.strategy.preview_port + n - 1

    @property
    def stable(self) -> range:
        return range(1, self.replicas + 1)

    @property
    def preview(self) -> range:
        return range(self.replicas + 1, 2 * self.replicas + 1)


def target_of(specs: Sequence[UnitSpec]) -> Target | None:
    """The blue-green target of the rendered units of one template, if blueGreen."""
    first = specs[0]
    st = first.strategy
    if st is None or st.blue_green is None or first.template is None:
        return None
    path = "/readyz"
    timeout = 30.0
    if first.probe is not None:
        path = "/" + first.probe.url.split("/", 3)[3]
        timeout = first.probe.timeout_s
    return Target(first.component, first.template, len(specs), first.version or "",
                  st.blue_green, path, timeout)  # fmt: skip


class Reach(Protocol):
    """What a rollout reaches the host through (the loop's ``Host`` has these)."""

    @property
    def runtime(self) -> Runtime: ...
    @property
    def replicas(self) -> Replicas: ...
    @property
    def clock(self) -> Clock: ...


class BlueGreenRollout:
    def __init__(
        self,
        host: Reach,
        store: StateStore,
        log: Callable[[str, str], None] = lambda level, message: None,
        metrics: ReconcilerMetrics | None = None,
    ) -> None:
        self.runtime = host.runtime
        self.store = store
        self.replicas = host.replicas
        self.clock = host.clock
        self.say = log
        self.metrics = metrics or ReconcilerMetrics()
        self.doc: dict[str, Any] = {}
        self.weight = 0.0
        self.paused = False

    # ------------------------------------------------------------------ the rollout

    def run(self, t: Target) -> None:
        """Roll ``t``'s replicas to its version; RolloutAborted (all stable) if it fails."""
        stable = self._versions(t, t.stable)
        previous = self.store.rollouts().get(t.deployment, {})
        if (
            previous.get("result") == "aborted"
            and previous.get("from") == t.version
            and set(stable.values()) == {t.version}
        ):  # the rollback from an aborted rollout: the stable replicas already run it
            self._stop_preview(t)
            self.say("info", f"{t.deployment}: the stable replicas run {t.version} already")
            return
        old = ",".join(sorted({v for v in stable.values() if v})) or "unknown"
        self.doc = {"deployment": t.deployment, "strategy": "blueGreen", "from": old,
                    "to": t.version, "replicas": t.replicas, "startedAt": self.clock.wall(),
                    "steps": [], "analysis": [], "result": None, "reason": ""}  # fmt: skip
        self._stop_preview(t)  # a killed run's, if any
        self._step("install", f"{t.version} installed")
        self.say("info", f"{t.deployment}: {enable_request_migration()}")
        try:
            self._start_preview(t)
            self._analyse(t, t.strategy.analysis)
            if not t.strategy.auto_promote or self.paused:
                self._await_promotion(t)
            self._promote(t)
        except (RolloutAborted, UnitCommandFailed, OSError) as exc:
            self._abort(t, str(exc))
            raise RolloutAborted(f"blue-green rollout of {t.deployment} to {t.version} "
                                 f"aborted: {exc}") from exc  # fmt: skip
        self._stop_preview(t)
        self._finish("completed", f"{t.replicas} replica(s) on {t.version}")

    def _start_preview(self, t: Target) -> None:
        self._step("start", f"starting {', '.join(t.unit(n) for n in t.preview)}")
        for n in t.preview:
            self.runtime.reset_failed(t.unit(n))
            self.runtime.request("start", t.unit(n))
        for n in t.preview:
            self._wait_ready(t, n)
        self.weight = 50.0  # as many new replicas as old ones on the shared port

    def _await_promotion(self, t: Target) -> None:
        self._step("paused", f"waiting for: atlas rollout promote {t.deployment}")
        while self._asked(t) not in ("promote", "resume"):
            self.clock.sleep(1.0)
        self.say("info", f"{t.deployment}: promoted by hand")

    def _asked(self, t: Target) -> str | None:
        asked = self.store.take_rollout_request(t.deployment)
        if asked == "abort":
            raise RolloutAborted("aborted by hand (atlas rollout abort)")
        if asked == "pause":  # the analysis goes on; promotion waits for resume/promote
            self.paused = True
            self.say("info", f"{t.deployment}: paused by hand: promotion waits")
        return asked

    def _promote(self, t: Target) -> None:
        self._step("promote", f"old replicas keep serving {t.strategy.scale_down_delay_s:g}s")
        self.clock.sleep(t.strategy.scale_down_delay_s)
        self._step("switch", f"restarting {', '.join(t.unit(n) for n in t.stable)}")
        for n in t.stable:
            self.runtime.reset_failed(t.unit(n))
            self.runtime.restart(t.unit(n))
            self._wait_ready(t, n)
        self.weight = 100.0

    def _abort(self, t: Target, reason: str) -> None:
        self._step("abort", reason)
        self._stop_preview(t)
        self.weight = 0.0
        self._finish("aborted", reason)

    # ------------------------------------------------------------------ analysis

    def _analyse(self, t: Target, a: Analysis) -> None:
        self._step("analysis", f"{a.count} x {a.interval_s:g}s, failureLimit {a.failure_limit}")
        tally = analysis.Tally(a)
        before = self._samples(t)
        while not tally.passed:
            self.clock.sleep(a.interval_s)
            self._asked(t)
            after = self._topped_up(t, before, a.min_requests)
            new = analysis.Window.between(
                analysis.total(before[n] for n in t.preview),
                analysis.total(after[n] for n in t.preview),
            )
            stable = [n for n in t.stable if n in before and n in after]
            old = None
            if stable:
                old = analysis.Window.between(
                    analysis.total(before[n] for n in stable),
                    analysis.total(after[n] for n in stable),
                )
            m = analysis.judge(a.metrics, new, old)
            tally.add(m)
            self.doc["analysis"].append({"ok": m.ok, "values": m.values, "at": self.clock.wall()})
            self._save()
            self.say(
                "info", f"{t.deployment}: analysis {len(tally.measurements)}/{a.count}: {m.summary}"
            )
            if tally.failed:
                raise RolloutAborted(tally.reason())
            before = after

    def _samples(self, t: Target) -> dict[int, analysis.Sample]:
        """Each replica's metrics; a new one that cannot be read fails, a stable one
        (started before blueGreen gave it a preview port) is left out."""
        out: dict[int, analysis.Sample] = {}
        for n in (*t.stable, *t.preview):
            try:
                status, text = self.replicas.get(t.port(n), "/metrics", PROBE_TIMEOUT_S)
                if status != 200:
                    raise OSError(f"/metrics answered {status}")
                out[n] = analysis.parse(text)
            except (OSError, analysis.MetricsUnreadable) as exc:
                if n in t.preview:
                    raise RolloutAborted(f"{t.unit(n)}: cannot read its metrics: {exc}") from exc
        return out

    def _topped_up(
        self, t: Target, before: dict[int, analysis.Sample], least: int
    ) -> dict[int, analysis.Sample]:
        after = self._samples(t)
        short = {
            n: int(least - (after[n].requests - before[n].requests))
            for n in after
            if n in before and after[n].requests - before[n].requests < least
        }
        if not short:
            return after
        for n, missing in short.items():  # too little traffic to judge: make some
            for i in range(missing):
                with contextlib.suppress(OSError):  # the replica's metrics tell
                    self.replicas.get(t.port(n), SYNTHETIC[i % 2], PROBE_TIMEOUT_S)
        return self._samples(t)

    # ------------------------------------------------------------------ helpers

    def _wait_ready(self, t: Target, n: int) -> None:
        unit = t.unit(n)
        deadline = self.clock.monotonic() + t.ready_timeout_s
        last = "no answer"
        while self.clock.monotonic() < deadline:
            state = self.runtime.unit_states([unit]).get(unit)
            if state is not None and state.active_state == "failed":
                how = f"{state.result}, status {state.exec_main_status}"
                raise RolloutAborted(f"{unit} failed ({how}; {self._tail(unit)})")
            try:
                status, _ = self.replicas.get(t.port(n), t.health_path, PROBE_TIMEOUT_S)
                if status == 200:
                    return
                last = f"{t.health_path} answered {status}"
            except OSError as exc:
                last = str(exc)
            self.clock.sleep(POLL_S)
        raise RolloutAborted(
            f"{unit} was not ready within {t.ready_timeout_s:g}s ({last}; {self._tail(unit)})"
        )

    def _tail(self, unit: str) -> str:
        lines = self.runtime.journal_tail(unit, 2)
        return " / ".join(lines) if lines else "nothing in its journal"

    def _versions(self, t: Target, which: range) -> dict[int, str | None]:
        out: dict[int, str | None] = {}
        for n in which:
            try:
                status, body = self.replicas.get(t.port(n), "/healthz", PROBE_TIMEOUT_S)
                out[n] = str(json.loads(body)["version"]) if status == 200 else None
            except (OSError, ValueError, KeyError, TypeError):
                out[n] = None
        return out

    def _stop_preview(self, t: Target) -> None:
        units = [t.unit(n) for n in t.preview]
        states = self.runtime.unit_states(units)
        for unit in units:
            state = states.get(unit)
            if state is not None and state.active_state not in ("inactive", "failed"):
                self.runtime.stop(unit)
            if state is not None and state.active_state == "failed":
                self.runtime.reset_failed(unit)

    def _step(self, phase: str, detail: str) -> None:
        self.doc["phase"] = phase
        self.doc["steps"].append({"phase": phase, "detail": detail, "at": self.clock.wall()})
        self._save()
        self.say("info", f"{self.doc['deployment']}: {phase}: {detail}")

    def _finish(self, result: str, reason: str) -> None:
        self.doc.update(result=result, reason=reason, finishedAt=self.clock.wall())
        self.doc["phase"] = result
        self._save()
        level = "info" if result == "completed" else "error"
        self.store.event(level, f"rollout-{result}", f"{self.doc['deployment']}: {reason}")

    def _save(self) -> None:
        self.doc["weight"] = self.weight
        self.store.put_rollout(str(self.doc["deployment"]), self.doc)
        self.metrics.set_rollout(str(self.doc["deployment"]), self.doc["phase"], self.weight)
