"""The alert rule engine: pure, with the time passed in.

Each rule selects series from a ``SampleSet``; every series whose value satisfies
the rule's comparison is an *alert instance*, identified by a ``fingerprint`` of
its labels (the series' labels, the rule's labels, ``alertname`` and ``severity``).
Lifecycle, as in Prometheus::

    inactive ──true──► pending ──true for `for`──► firing ──false──► resolved
                         │                           ▲  │
                         └──false──► inactive        └──┘ false for less than
                                                          `keepFiringFor`

* ``for`` 0 fires at once. ``keepFiringFor`` keeps a firing alert firing while the
  condition has been false for less than that, so a dip does not resolve (and later
  re-send) it.
* A rule none of whose series exist is in **no data** — its own state, recorded as
  a transition and exported (``atlas_alert_rule_nodata``, which rules can watch
  too), never read as 0. Pending alerts of such a rule drop to
  inactive; firing ones hold their state until data returns (a scrape outage does
  not resolve a real problem). A single series vanishing while the rule still has
  data counts as "condition false" (the series is gone, as in Prometheus).
* Notifications: the alerts of one rule that start firing in the same evaluation
  form one ``Group``; a firing alert is sent once, then again only after
  ``repeatInterval`` (0: never) — when one alert of a rule is due, every notified
  firing alert of that rule joins the repeat, so a group stays one message.
  Resolved alerts are announced only if their firing was.
* ``silenced`` (maintenance): everything is evaluated and every transition
  recorded, but groups are returned as ``suppressed``; firing alerts stay
  "not notified", so whatever still fires when maintenance ends is sent then.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Literal

from atlas.monitoring.samples import Labels, Sample, SampleSet, Selector

Severity = Literal["critical", "warning", "info"]
CompareOp = Literal[">", ">=", "<", "<=", "==", "!="]


@dataclass(frozen=True)
class Rule:
    """One alert rule as the engine evaluates it (built from the config by
    :func:`atlas.alerting.settings.alerting_from_dict`)."""

    name: str
    selector: Selector
    op: CompareOp
    threshold: float
    for_s: float
    keep_firing_for_s: float
    repeat_interval_s: float  # 0: never repeat
    severity: Severity
    channels: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def holds(self, value: float) -> bool:
        """True when ``value op threshold``; NaN never holds."""
        t = self.threshold
        if math.isnan(value):
            return False
        return {
            ">": value > t,
            ">=": value >= t,
            "<": value < t,
            "<=": value <= t,
            "==": value == t,
            "!=": value != t,
        }[self.op]

    @property
    def expression(self) -> str:
        return f"{self.selector} {self.op} {self.threshold:g}"


AlertState = Literal["pending", "firing"]
GroupStatus = Literal["firing", "resolved"]
# States in transitions: inactive, pending, firing, resolved (alerts); ok, nodata (rules).
Annotator = Callable[[Rule, Mapping[str, str], float], dict[str, str]]


def fingerprint(labels: Mapping[str, str]) -> str:
    """A stable 16-hex-digit identity of a label set (rule name included as alertname)."""
    text = "".join(f"{key}\xfe{labels[key]}\xff" for key in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


RuleKey = tuple[str, str, tuple[tuple[str, str], ...]]


def _rule_key(rule: Rule) -> RuleKey:
    return (rule.name, rule.severity, tuple(sorted(rule.labels.items())))


@lru_cache(maxsize=65536)
def _identity(key: RuleKey, series: Labels) -> tuple[tuple[tuple[str, str], ...], str]:
    """(alert labels, fingerprint) of a rule's series: its labels, the rule's labels
    over them, then ``alertname`` and ``severity``. The same every evaluation, so
    cached — hashing them anew each time was most of an evaluation's cost."""
    labels = {k: v for k, v in series if k != "__name__"}
    labels.update(key[2])
    labels["alertname"] = key[0]
    labels["severity"] = key[1]
    return tuple(labels.items()), fingerprint(labels)


def plain_annotations(rule: Rule, labels: Mapping[str, str], value: float) -> dict[str, str]:
    """The annotations as written (no templating): the default annotator."""
    return dict(rule.annotations)


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    rule: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: AlertState
    value: float
    active_at: float
    fired_at: float | None = None
    keep_firing_since: float | None = None
    notified: bool = False
    last_notified_at: float | None = None
    silenced_at: float | None = None  # when a notification of it was held back

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "")


@dataclass(frozen=True)
class Transition:
    at: float
    rule: str
    fingerprint: str  # "" for a rule-level change (ok <-> nodata)
    labels: dict[str, str]
    from_state: str
    to_state: str
    value: float | None
    reason: str = ""


@dataclass(frozen=True)
class GroupAlert:
    alert: Alert
    status: GroupStatus
    ends_at: float | None = None  # set when resolved


@dataclass(frozen=True)
class Group:
    """One notification's worth of alerts of one rule."""

    rule: str
    at: float
    reason: Literal["firing", "repeat", "resolved"]
    alerts: tuple[GroupAlert, ...]

    @property
    def status(self) -> GroupStatus:
        return "firing" if any(a.status == "firing" for a in self.alerts) else "resolved"


@dataclass(frozen=True)
class EngineState:
    alerts: Mapping[str, Alert] = field(default_factory=dict)
    nodata: Mapping[str, float] = field(default_factory=dict)  # rule -> since


@dataclass(frozen=True)
class Evaluation:
    state: EngineState
    transitions: tuple[Transition, ...]
    groups: tuple[Group, ...]  # to notify
    suppressed: tuple[Group, ...]  # would have been notified, but maintenance is on
    changed: tuple[Alert, ...]  # alerts to store
    removed: tuple[str, ...]  # fingerprints to forget


def evaluate(
    rules: Iterable[Rule],
    samples: SampleSet,
    state: EngineState,
    now: float,
    *,
    silenced: bool = False,
    annotate: Annotator = plain_annotations,
) -> Evaluation:
    """One evaluation of every rule at time ``now``."""
    rules = tuple(rules)
    ev = _Evaluator(state, now, silenced, annotate)
    by_rule: dict[str, dict[str, Alert]] = {}
    for a in state.alerts.values():
        by_rule.setdefault(a.rule, {})[a.fingerprint] = a
    known = {r.name for r in rules}
    for name, orphans in by_rule.items():
        if name not in known:
            ev.rule_removed(name, orphans)
    for name in state.nodata:
        if name not in known:
            ev.nodata.pop(name, None)
    for rule in rules:
        ev.rule(rule, samples.select(rule.selector), by_rule.get(rule.name, {}))
    return ev.result()


@dataclass(frozen=True, slots=True)
class _Observation:
    """What one evaluation saw of one alert instance of a rule."""

    fingerprint: str
    labels: dict[str, str]
    value: float
    holds: bool  # the rule's condition is true for it
    gone: bool = False  # its series no longer exists (value and labels are the last seen)

    @property
    def why_false(self) -> str:
        return "series gone" if self.gone else "condition false"


@dataclass(slots=True)
class _RuleNews:
    """What one rule's evaluation has to announce: alerts that start (or resume)
    firing, None for those held back again while silenced, and resolved alerts."""

    firing: list[GroupAlert | None] = field(default_factory=list)
    resolved: list[GroupAlert] = field(default_factory=list)


class _Evaluator:
    def __init__(self, state: EngineState, now: float, silenced: bool, annotate: Annotator):
        self.now = now
        self.silenced = silenced
        self.annotate = annotate
        self.alerts: dict[str, Alert] = dict(state.alerts)
        self.nodata: dict[str, float] = dict(state.nodata)
        self.transitions: list[Transition] = []
        self.groups: list[Group] = []
        self.suppressed: list[Group] = []
        self.changed: dict[str, Alert] = {}
        self.removed: list[str] = []

    def result(self) -> Evaluation:
        return Evaluation(
            EngineState(self.alerts, self.nodata),
            tuple(self.transitions),
            tuple(self.groups),
            tuple(self.suppressed),
            tuple(self.changed.values()),
            tuple(self.removed),
        )

    # ---- bookkeeping

    def _move(self, a: Alert, to: str, reason: str = "", frm: str | None = None) -> None:
        self.transitions.append(
            Transition(
                self.now, a.rule, a.fingerprint, a.labels, frm or a.state, to, a.value, reason
            )
        )

    def _store(self, a: Alert) -> Alert:
        if self.alerts.get(a.fingerprint) != a:
            self.alerts[a.fingerprint] = a
            self.changed[a.fingerprint] = a
        return a

    def _forget(self, a: Alert) -> None:
        self.alerts.pop(a.fingerprint, None)
        self.changed.pop(a.fingerprint, None)
        self.removed.append(a.fingerprint)

    def _rule_state(self, rule: str, frm: str, to: str, reason: str) -> None:
        self.transitions.append(
            Transition(self.now, rule, "", {"alertname": rule}, frm, to, None, reason)
        )

    # ---- per rule

    def rule_removed(self, name: str, alerts: Mapping[str, Alert]) -> None:
        resolved = []
        for a in sorted(alerts.values(), key=lambda x: sorted(x.labels.items())):
            self._forget(a)
            if a.state == "firing":
                self._move(a, "resolved", "rule removed")
                if a.notified:
                    resolved.append(GroupAlert(a, "resolved", self.now))
            else:
                self._move(a, "inactive", "rule removed")
        self._emit(name, "resolved", resolved)

    def rule(self, rule: Rule, series: list[Sample], mine: dict[str, Alert]) -> None:
        if not series:
            self._no_data(rule, mine)
            return
        if rule.name in self.nodata:
            del self.nodata[rule.name]
            self._rule_state(rule.name, "nodata", "ok", "data is back")
        news = _RuleNews()
        seen: set[str] = set()
        key = _rule_key(rule)
        for s in series:
            holds = rule.holds(s.value)
            if not holds and not mine:
                continue  # the common case: nothing to do, no need to know who it is
            pairs, fp = _identity(key, s.labels)
            if fp in seen:  # two series with one label set once the rule's labels apply
                continue
            seen.add(fp)
            prev = mine.get(fp)
            if prev is None and not holds:
                continue
            self._step(rule, prev, _Observation(fp, dict(pairs), s.value, holds), news)
        for fp, prev in mine.items():
            if fp not in seen:
                gone = _Observation(fp, prev.labels, prev.value, holds=False, gone=True)
                self._step(rule, prev, gone, news)
        fresh = [g for g in news.firing if g is not None]
        repeat = self._repeats(rule, seen | set(mine), {g.alert.fingerprint for g in fresh})
        reason = "firing" if fresh else ("repeat" if repeat else "resolved")
        self._emit(rule.name, reason, [*fresh, *repeat, *news.resolved])

    def _no_data(self, rule: Rule, mine: Mapping[str, Alert]) -> None:
        if rule.name not in self.nodata:
            self.nodata[rule.name] = self.now
            self._rule_state(rule.name, "ok", "nodata", f"no series matches {rule.selector}")
        for a in mine.values():
            if a.state == "pending":
                self._forget(a)
                self._move(a, "inactive", "no data")

    def _step(self, rule: Rule, prev: Alert | None, obs: _Observation, news: _RuleNews) -> None:
        """Move one alert instance of ``rule`` along its lifecycle, given what this
        evaluation saw of it; ``prev`` is its state so far (None: inactive)."""
        if prev is None:
            if obs.holds:
                self._start(rule, obs, news)
            return
        cur = replace(prev, value=obs.value, annotations=self._annotations(rule, prev, obs))
        if prev.state == "pending":
            self._step_pending(rule, prev, cur, obs, news)
        else:
            self._step_firing(rule, prev, cur, obs, news)

    def _annotations(self, rule: Rule, prev: Alert, obs: _Observation) -> dict[str, str]:
        """Rendered anew only when the value changed or the rule gained annotations."""
        if obs.value != prev.value or (not prev.annotations and rule.annotations):
            return self.annotate(rule, obs.labels, obs.value)
        return prev.annotations

    def _start(self, rule: Rule, obs: _Observation, news: _RuleNews) -> None:
        """inactive -> pending, or straight to firing when the rule has no ``for``."""
        now = self.now
        annotations = self.annotate(rule, obs.labels, obs.value)
        a = Alert(obs.fingerprint, rule.name, obs.labels, annotations, "pending", obs.value, now)
        if rule.for_s <= 0:
            a = replace(a, state="firing", fired_at=now)
            self._move(a, "firing", "condition true", frm="inactive")
            news.firing.append(self._announce(a))
        else:
            self._move(a, "pending", "condition true", frm="inactive")
            self._store(a)

    def _step_pending(
        self, rule: Rule, prev: Alert, cur: Alert, obs: _Observation, news: _RuleNews
    ) -> None:
        """pending -> inactive when false, -> firing once true for ``for``."""
        if not obs.holds:
            self._forget(prev)
            self._move(cur, "inactive", obs.why_false)
        elif self.now - prev.active_at >= rule.for_s:
            cur = replace(cur, state="firing", fired_at=self.now)
            self._move(cur, "firing", f"condition true for {rule.for_s:g}s", frm="pending")
            news.firing.append(self._announce(cur))
        else:
            self._store(cur)

    def _step_firing(
        self, rule: Rule, prev: Alert, cur: Alert, obs: _Observation, news: _RuleNews
    ) -> None:
        """firing stays firing while true or within ``keepFiringFor``, else resolves."""
        if obs.holds:
            self._keep_firing(prev, replace(cur, keep_firing_since=None), news)
            return
        since = prev.keep_firing_since if prev.keep_firing_since is not None else self.now
        if rule.keep_firing_for_s > 0 and self.now - since < rule.keep_firing_for_s:
            self._keep_firing(prev, replace(cur, keep_firing_since=since), news)
            return
        self._forget(prev)
        self._move(cur, "resolved", obs.why_false)
        if prev.notified:
            news.resolved.append(GroupAlert(cur, "resolved", self.now))

    def _keep_firing(self, prev: Alert, cur: Alert, news: _RuleNews) -> None:
        self._store(cur)
        if not prev.notified:  # e.g. fired during maintenance, which is now over
            news.firing.append(self._announce(cur))

    def _announce(self, a: Alert) -> GroupAlert | None:
        """Store a firing alert that is due to be announced; the entry for its group.

        Silenced (maintenance), it stays "not notified" and is reported as suppressed
        once (``silenced_at``), not on every evaluation.
        """
        if not self.silenced:
            self._store(replace(a, notified=True, last_notified_at=self.now, silenced_at=None))
            return GroupAlert(self.alerts[a.fingerprint], "firing")
        if a.silenced_at is not None:
            self._store(a)
            return None
        self._store(replace(a, silenced_at=self.now))
        return GroupAlert(self.alerts[a.fingerprint], "firing")

    def _repeats(self, rule: Rule, fingerprints: set[str], fresh: set[str]) -> list[GroupAlert]:
        """Every notified firing alert of ``rule`` when one of them is due again."""
        if rule.repeat_interval_s <= 0:
            return []
        candidates = []
        for fp in fingerprints - fresh:
            a = self.alerts.get(fp)
            if a is not None and a.state == "firing" and a.last_notified_at is not None:
                candidates.append(a)
        if not any(
            self.now - (a.last_notified_at or 0.0) >= rule.repeat_interval_s for a in candidates
        ):
            return []
        out = []
        for a in sorted(candidates, key=lambda x: sorted(x.labels.items())):
            entry = self._announce(a)
            if entry is not None:
                out.append(entry)
        return out

    def _emit(self, rule: str, reason: str, alerts: list[GroupAlert]) -> None:
        if not alerts:
            return
        group = Group(rule, self.now, reason, tuple(alerts))  # type: ignore[arg-type]
        (self.suppressed if self.silenced else self.groups).append(group)
