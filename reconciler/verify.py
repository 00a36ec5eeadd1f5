"""Verify: after applying, are the changed units active, stable and healthy?

A unit passes when systemd reports it active (running; waiting for timers) with the
same main PID and no new restarts for ``stable_for`` seconds, and then, if its
Deployment has an HTTP health check, when that check answers 2xx. It fails fast
when systemd reports it failed, restarting (auto-restart), or dead after a start,
and fails when the health check has not passed within the Deployment's timeout.

Seams: ``Runtime`` (systemd), ``HttpProbe`` (httpx), ``seams.clock.Clock`` (monotonic
time and sleeping).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from reconciler.host.probe import HttpProbe
from reconciler.host.runtime import Runtime, UnitState
from reconciler.render.desired import UnitSpec
from seams.clock import Clock

Waiting = Callable[[Sequence[str], float], None]  # units not healthy yet, seconds waited


@dataclass(frozen=True)
class UnitHealth:
    unit: str
    ok: bool
    detail: str
    active_state: str = ""
    sub_state: str = ""


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str
    units: tuple[UnitHealth, ...] = field(default=())


@dataclass
class _Watch:
    spec: UnitSpec
    baseline_restarts: int
    deadline: float
    active_since: float | None = None
    pid: int = 0
    last_probe: str = "not probed yet"
    result: UnitHealth | None = None


def _failure(state: UnitState, baseline_restarts: int) -> str | None:
    if state.load_state not in ("loaded", ""):
        return f"unit is {state.load_state}"
    if state.active_state == "failed":
        return f"failed (result {state.result}, exit status {state.exec_main_status})"
    if state.sub_state == "auto-restart" or state.n_restarts > baseline_restarts:
        return f"restarting in a loop ({state.n_restarts} restarts)"
    if state.active_state == "inactive" and state.sub_state == "dead":
        return (
            f"exited after it was started (result {state.result}, "
            f"exit status {state.exec_main_status})"
        )
    return None


def _running(spec: UnitSpec, state: UnitState) -> bool:
    if state.active_state not in ("active", "reloading"):
        return False
    if spec.name.endswith(".timer"):
        return state.sub_state in ("waiting", "running", "elapsed")
    return state.sub_state in ("running", "reload", "exited")


def _probe(w: _Watch, state: UnitState, http: HttpProbe) -> UnitHealth | None:
    """A stable unit's health check: healthy when it answers 2xx (no check: healthy)."""
    probe = w.spec.probe
    if probe is None:
        return UnitHealth(
            w.spec.name, True, "active and stable", state.active_state, state.sub_state
        )
    try:
        code = http.status(probe.url, min(2.0, probe.timeout_s))
    except OSError as exc:
        w.last_probe = str(exc)[:200]
        return None
    w.last_probe = f"HTTP {code}"
    if 200 <= code < 300:
        detail = f"{probe.url} answered {code}"
        return UnitHealth(w.spec.name, True, detail, state.active_state, state.sub_state)
    return None


def _timed_out(w: _Watch, state: UnitState) -> UnitHealth:
    what = (
        f"health check {w.spec.probe.url} did not pass within "
        f"{w.spec.probe.timeout_s:g}s (last: {w.last_probe})"
        if w.spec.probe and w.active_since is not None
        else f"not active and stable within the timeout ({state.active_state}/{state.sub_state})"
    )
    return UnitHealth(w.spec.name, False, what, state.active_state, state.sub_state)


def _step(
    w: _Watch, state: UnitState, now: float, http: HttpProbe, stable_for: float
) -> UnitHealth | None:
    """One look at one unit: its verdict, or None while it is still coming up."""
    failure = _failure(state, w.baseline_restarts)
    if failure:
        return UnitHealth(w.spec.name, False, failure, state.active_state, state.sub_state)
    result = None
    if not _running(w.spec, state):
        w.active_since = None
    elif w.active_since is None or state.main_pid != w.pid:
        w.active_since, w.pid = now, state.main_pid
    elif now - w.active_since >= stable_for:
        result = _probe(w, state, http)
    if result is None and now >= w.deadline:
        return _timed_out(w, state)
    return result


def _verdict(watches: Sequence[_Watch]) -> Verdict:
    results = tuple(
        w.result or UnitHealth(w.spec.name, False, "not verified (another unit failed first)")
        for w in watches
    )
    failed = [r for r in results if not r.ok and not r.detail.startswith("not verified")]
    if failed:
        return Verdict(False, "; ".join(f"{r.unit}: {r.detail}" for r in failed), results)
    return Verdict(True, f"{len(results)} unit(s) healthy", results)


@dataclass(frozen=True)
class Patience:
    stable_for: float = 1.0  # seconds a unit keeps its PID and restart count
    default_timeout: float = 30.0  # for a unit without a health check of its own
    poll: float = 0.1


def verify(
    units: Sequence[UnitSpec],
    runtime: Runtime,
    http: HttpProbe,
    clock: Clock,
    *,
    baseline: Mapping[str, UnitState] | None = None,
    patience: Patience = Patience(),
    on_wait: Waiting | None = None,
) -> Verdict:
    """Wait until every unit in ``units`` is healthy, or one fails, or time runs out."""
    stable_for, default_timeout, poll = (
        patience.stable_for,
        patience.default_timeout,
        patience.poll,
    )
    watched = [u for u in units if u.start]
    if not watched:
        return Verdict(True, "nothing to verify")
    start = clock.monotonic()
    baseline = baseline or {}
    watches = [
        _Watch(
            u,
            baseline.get(u.name, UnitState(u.name)).n_restarts,
            start + (u.probe.timeout_s if u.probe else default_timeout),
        )
        for u in watched
    ]
    while pending := [w for w in watches if w.result is None]:
        now = clock.monotonic()
        states = runtime.unit_states([w.spec.name for w in pending])
        for w in pending:
            w.result = _step(w, states[w.spec.name], now, http, stable_for)
        if any(w.result is not None and not w.result.ok for w in watches):
            break  # fail fast: no need to wait for the others
        if on_wait is not None and (left := [w.spec.name for w in watches if w.result is None]):
            on_wait(left, clock.monotonic() - start)
        clock.sleep(poll)
    return _verdict(watches)


JOURNAL_LINES = 8
_HIDDEN = "«hidden»"


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret value in it hidden (a service may log one by mistake)."""
    for value in sorted({s for s in secrets if len(s) >= 3}, key=len, reverse=True):
        text = text.replace(value, _HIDDEN)
    return text


def explained(verdict: Verdict, runtime: Runtime, secrets: Sequence[str] = ()) -> Verdict:
    """``verdict`` with the last journal lines of each unit that failed in its reason, so
    the error, ``atlas history`` and the event say why without a trip to journalctl."""
    failed = [u.unit for u in verdict.units if not u.ok and not u.detail.startswith("not ver")]
    parts = [verdict.reason]
    for unit in dict.fromkeys(failed):
        lines = runtime.journal_tail(unit, JOURNAL_LINES)
        if lines:
            shown = " | ".join(line[:300] for line in lines)
            parts.append(f"last journal lines of {unit}: {redact(shown, secrets)}")
    return replace(verdict, reason="; ".join(parts))
