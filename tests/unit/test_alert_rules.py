"""The rule engine with an injected clock: for, keepFiringFor, repeatInterval,
no data, resolve, grouping and maintenance."""

from __future__ import annotations

import math
from typing import Any

import pytest

from atlas.alerting.templates import render_annotations
from atlas.monitoring.rules import EngineState, Evaluation, Rule, evaluate, fingerprint
from atlas.monitoring.samples import Matcher, Sample, SampleSet, Selector, sample

T0 = 1_700_000_000.0


def mk(name: str = "r", metric: str = "m", **kw: Any) -> Rule:
    base: dict[str, Any] = {
        "name": name,
        "selector": Selector(metric, tuple(kw.pop("matchers", ()))),
        "op": ">",
        "threshold": 1.0,
        "for_s": 0.0,
        "keep_firing_for_s": 0.0,
        "repeat_interval_s": 0.0,
        "severity": "warning",
        "channels": ("hook",),
    }
    base.update(kw)
    return Rule(**base)


class Run:
    """Drives one rule set through time, keeping the engine state between steps."""

    def __init__(self, *rules: Rule) -> None:
        self.rules = rules
        self.state = EngineState()
        self.log: list[Evaluation] = []

    def at(self, t: float, *samples: Sample, silenced: bool = False) -> Evaluation:
        ev = evaluate(
            self.rules,
            SampleSet(samples),
            self.state,
            T0 + t,
            silenced=silenced,
            annotate=render_annotations,
        )
        self.state = ev.state
        self.log.append(ev)
        return ev


def states(ev: Evaluation) -> list[tuple[str, str]]:
    return [(t.from_state, t.to_state) for t in ev.transitions]


def test_for_keeps_an_alert_pending_until_the_condition_held_long_enough() -> None:
    run = Run(mk(for_s=60))
    ev = run.at(0, sample("m", 5))
    assert states(ev) == [("inactive", "pending")] and not ev.groups
    ev = run.at(30, sample("m", 5))
    assert states(ev) == [] and not ev.groups
    (alert,) = run.state.alerts.values()
    assert alert.state == "pending" and alert.active_at == T0
    ev = run.at(60, sample("m", 6))
    assert states(ev) == [("pending", "firing")]
    (group,) = ev.groups
    assert group.status == "firing" and group.reason == "firing"
    (entry,) = group.alerts
    assert entry.alert.fired_at == T0 + 60 and entry.alert.value == 6
    assert entry.alert.notified and entry.alert.last_notified_at == T0 + 60


def test_a_pending_alert_whose_condition_clears_goes_back_to_inactive_silently() -> None:
    run = Run(mk(for_s=60))
    run.at(0, sample("m", 5))
    ev = run.at(30, sample("m", 0))
    assert states(ev) == [("pending", "inactive")]
    assert not ev.groups and not run.state.alerts and ev.removed


def test_for_zero_fires_at_once() -> None:
    run = Run(mk())
    ev = run.at(0, sample("m", 2))
    assert states(ev) == [("inactive", "firing")] and len(ev.groups) == 1


def test_resolve_sends_resolved_with_ends_at() -> None:
    run = Run(mk())
    run.at(0, sample("m", 2))
    ev = run.at(10, sample("m", 0))
    assert states(ev) == [("firing", "resolved")]
    (group,) = ev.groups
    assert group.status == "resolved" and group.reason == "resolved"
    (entry,) = group.alerts
    assert entry.status == "resolved" and entry.ends_at == T0 + 10
    assert entry.alert.fired_at == T0
    assert not run.state.alerts


def test_keep_firing_for_rides_out_a_dip_without_resending() -> None:
    run = Run(mk(keep_firing_for_s=60, repeat_interval_s=3600))
    assert run.at(0, sample("m", 2)).groups
    for t in (10, 40, 69):  # false for 59 s: still firing, nothing sent
        ev = run.at(t, sample("m", 0))
        assert not ev.groups and not ev.transitions
        (a,) = run.state.alerts.values()
        assert a.state == "firing" and a.keep_firing_since == T0 + 10
    ev = run.at(75, sample("m", 3))  # back: the dip is forgotten, and nothing is re-sent
    assert not ev.groups and not ev.transitions
    (a,) = run.state.alerts.values()
    assert a.keep_firing_since is None
    run.at(80, sample("m", 0))
    assert not run.at(139, sample("m", 0)).groups
    ev = run.at(140, sample("m", 0))  # false for 60 s: resolved
    assert states(ev) == [("firing", "resolved")]
    assert ev.groups[0].status == "resolved" and ev.groups[0].alerts[0].ends_at == T0 + 140


def test_without_keep_firing_for_a_dip_resolves_and_the_return_fires_again() -> None:
    run = Run(mk(repeat_interval_s=3600))
    run.at(0, sample("m", 2))
    assert run.at(10, sample("m", 0)).groups[0].status == "resolved"
    ev = run.at(20, sample("m", 2))
    assert ev.groups[0].status == "firing"


def test_repeat_interval_is_the_cooldown_before_a_still_firing_alert_is_sent_again() -> None:
    run = Run(mk(repeat_interval_s=600))
    assert run.at(0, sample("m", 2)).groups
    for t in (10, 300, 599):
        assert not run.at(t, sample("m", 2)).groups
    ev = run.at(600, sample("m", 2))
    (group,) = ev.groups
    assert group.reason == "repeat" and group.status == "firing"
    assert not ev.transitions, "a repeat is not a state change"
    assert not run.at(700, sample("m", 2)).groups
    assert run.at(1200, sample("m", 2)).groups[0].reason == "repeat"


def test_repeat_interval_zero_never_repeats() -> None:
    run = Run(mk(repeat_interval_s=0))
    run.at(0, sample("m", 2))
    assert not any(run.at(t, sample("m", 2)).groups for t in (3600, 86400, 10 * 86400))


def test_a_missing_metric_is_no_data_not_zero() -> None:
    run = Run(mk(op="==", threshold=0))
    ev = run.at(0)  # nothing at all
    assert [(t.from_state, t.to_state, t.fingerprint) for t in ev.transitions] == [
        ("ok", "nodata", "")
    ]
    assert not ev.groups and not run.state.alerts and "r" in run.state.nodata
    assert not run.at(10).transitions, "no data is recorded once, not every cycle"
    ev = run.at(20, sample("m", 0))  # a real zero fires
    assert states(ev) == [("nodata", "ok"), ("inactive", "firing")]
    assert "r" not in run.state.nodata


def test_no_data_holds_firing_alerts_and_drops_pending_ones() -> None:
    firing, pending = mk("f"), mk("p", metric="n", for_s=600)
    run = Run(firing, pending)
    run.at(0, sample("m", 2), sample("n", 2))
    ev = run.at(10)  # the scrape failed: both metrics are gone
    assert ("pending", "inactive") in states(ev)
    assert ("firing", "resolved") not in states(ev)
    assert not ev.groups
    assert [a.rule for a in run.state.alerts.values()] == ["f"]
    ev = run.at(20, sample("m", 2))  # data back, still true: nothing is re-sent
    assert not ev.groups and states(ev) == [("nodata", "ok")]


def test_one_series_vanishing_while_the_rule_has_data_resolves_it() -> None:
    run = Run(mk())
    run.at(0, sample("m", 2, source="a"), sample("m", 2, source="b"))
    ev = run.at(10, sample("m", 2, source="a"))
    assert [(t.labels["source"], t.to_state, t.reason) for t in ev.transitions] == [
        ("b", "resolved", "series gone")
    ]


def test_alerts_of_one_rule_starting_together_are_one_notification() -> None:
    run = Run(mk(repeat_interval_s=3600))
    ev = run.at(
        0, sample("m", 2, source="a"), sample("m", 3, source="b"), sample("m", 0, source="c")
    )
    (group,) = ev.groups
    assert sorted(g.alert.labels["source"] for g in group.alerts) == ["a", "b"]
    ev = run.at(
        10, sample("m", 2, source="a"), sample("m", 3, source="b"), sample("m", 5, source="c")
    )
    (group,) = ev.groups
    assert [g.alert.labels["source"] for g in group.alerts] == ["c"], "only the new one"
    ev = run.at(3600, *(sample("m", 5, source=s) for s in "abc"))
    (group,) = ev.groups
    assert group.reason == "repeat" and len(group.alerts) == 3, "a repeat carries the group"


def test_alerts_of_different_rules_are_separate_notifications() -> None:
    run = Run(mk("one"), mk("two"))
    ev = run.at(0, sample("m", 2))
    assert sorted(g.rule for g in ev.groups) == ["one", "two"]


def test_maintenance_records_everything_and_notifies_nothing() -> None:
    run = Run(mk(repeat_interval_s=3600))
    ev = run.at(0, sample("m", 2), silenced=True)
    assert states(ev) == [("inactive", "firing")], "evaluated and recorded"
    assert not ev.groups and len(ev.suppressed) == 1
    (a,) = run.state.alerts.values()
    assert not a.notified and a.silenced_at == T0
    ev = run.at(10, sample("m", 2), silenced=True)
    assert not ev.groups and not ev.suppressed, "held back once, not every cycle"
    ev = run.at(20, sample("m", 2))  # maintenance over, still firing: now it is sent
    (group,) = ev.groups
    assert group.status == "firing" and group.alerts[0].alert.notified


def test_an_alert_that_fires_and_resolves_within_maintenance_is_never_sent() -> None:
    run = Run(mk())
    run.at(0, sample("m", 2), silenced=True)
    ev = run.at(10, sample("m", 0), silenced=True)
    assert states(ev) == [("firing", "resolved")] and not ev.groups and not ev.suppressed
    assert not run.at(20, sample("m", 0)).groups


def test_a_resolve_during_maintenance_of_a_notified_alert_is_held_back() -> None:
    run = Run(mk())
    run.at(0, sample("m", 2))
    ev = run.at(10, sample("m", 0), silenced=True)
    assert not ev.groups and ev.suppressed[0].status == "resolved"


def test_a_removed_rule_resolves_its_alerts() -> None:
    run = Run(mk("gone"), mk("stays"))
    run.at(0, sample("m", 2))
    run.rules = (mk("stays"),)
    ev = run.at(10, sample("m", 2))
    assert [(t.rule, t.to_state, t.reason) for t in ev.transitions] == [
        ("gone", "resolved", "rule removed")
    ]
    assert [g.rule for g in ev.groups] == ["gone"] and ev.groups[0].status == "resolved"


def test_fingerprint_is_rule_plus_labels() -> None:
    run = Run(mk("one"), mk("two"))
    run.at(0, sample("m", 2, source="a"), sample("m", 2, source="b"))
    fps = {(a.rule, a.labels["source"]): a.fingerprint for a in run.state.alerts.values()}
    assert len(set(fps.values())) == 4
    assert fps[("one", "a")] == fingerprint(
        {"alertname": "one", "severity": "warning", "source": "a"}
    )
    assert len(fps[("one", "a")]) == 16


def test_rule_labels_and_severity_join_the_alert_labels() -> None:
    run = Run(mk(labels={"team": "ops"}, severity="critical"))
    run.at(0, sample("m", 2, source="a"))
    (a,) = run.state.alerts.values()
    assert a.labels == {"alertname": "r", "severity": "critical", "source": "a", "team": "ops"}


@pytest.mark.parametrize(
    ("op", "threshold", "value", "holds"),
    [
        (">", 1, 2, True),
        (">", 1, 1, False),
        (">=", 1, 1, True),
        ("<", 1, 0, True),
        ("<=", 1, 2, False),
        ("==", 0, 0, True),
        ("==", 0, 0.1, False),
        ("!=", 0, 1, True),
        (">", 1, math.nan, False),
        ("!=", 0, math.nan, False),
    ],
)
def test_comparisons(op: str, threshold: float, value: float, holds: bool) -> None:
    assert mk(op=op, threshold=threshold).holds(value) is holds


def test_matchers_follow_promql() -> None:
    series = [
        sample("m", 1, source="hn", env="prod"),
        sample("m", 1, source="hn-2", env="dev"),
        sample("m", 1, source="blog"),
    ]
    s = SampleSet(series)

    def pick(*ms: Matcher) -> list[str]:
        return sorted(x.label_map["source"] for x in s.select(Selector("m", ms)))

    assert pick(Matcher.make("source", "=", "hn")) == ["hn"]
    assert pick(Matcher.make("source", "!=", "hn")) == ["blog", "hn-2"]
    assert pick(Matcher.make("source", "=~", "hn")) == ["hn"], "regexes are anchored"
    assert pick(Matcher.make("source", "=~", "hn.*")) == ["hn", "hn-2"]
    assert pick(Matcher.make("source", "!~", "hn.*")) == ["blog"]
    assert pick(Matcher.make("env", "=", "")) == ["blog"], "a missing label is empty"
    assert pick(Matcher.make("source", "=~", "hn.*"), Matcher.make("env", "!=", "dev")) == ["hn"]
    assert s.select(Selector("other")) == []


def test_annotations_are_templates_of_labels_and_value() -> None:
    r = mk(
        annotations={
            "summary": "Disk {{ labels.mount }} is {{ value | round(1) }}% full",
            "count": "{{ value }} items",
            "plain": "no template",
            "broken": "{{ labels.mount | nosuchfilter }}",
        }
    )
    run = Run(r)
    run.at(0, sample("m", 93.27, mount="/"))
    (a,) = run.state.alerts.values()
    assert a.annotations["summary"] == "Disk / is 93.3% full"
    assert a.annotations["plain"] == "no template"
    assert a.annotations["broken"].startswith("(template error")
    run.at(10, sample("m", 150, mount="/"))
    (a,) = run.state.alerts.values()
    assert a.annotations["count"] == "150 items", "re-rendered with the new value"
