"""Work a killed reconcile still owed, merged into the next plan, case by case."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from reconciler.actions import Action, DaemonReload, Enable, Plan, Reload, Restart, Start
from reconciler.model import Revision
from reconciler.plan import carried_over
from reconciler.render.desired import Rendered, UnitSpec

CORE, API, JOB = "atlas-core.service", "atlas-api.service", "atlas-services.service"
RENDERED = Rendered(
    (),
    (),
    (
        UnitSpec(CORE, PurePosixPath("/u/core"), "core", True, True),
        UnitSpec(API, PurePosixPath("/u/api"), "api", True, True),
        UnitSpec(JOB, PurePosixPath("/u/job"), "services", False, False),  # timer-run job
    ),
)


def plan(*actions: Action) -> Plan:
    return Plan("dev", Revision("x"), actions)


def owed(verb: str, target: str = "") -> dict[str, str]:
    return {"action": verb, "target": target}


CASES = [
    # (case, plan, journal of the killed run, expected (verb, target) of the merged plan)
    ("nothing owed", plan(Start("new", CORE, "core")), [], [("start", CORE)]),
    ("a restart owed", plan(), [owed("restart", API)], [("restart", API)]),
    ("a daemon-reload owed goes first", plan(Restart("changed", CORE, "core")),
     [owed("daemon-reload")], [("daemon-reload", ""), ("restart", CORE)]),
    ("owed reload of a unit the plan restarts anyway", plan(Restart("changed", CORE, "core")),
     [owed("reload", CORE)], [("restart", CORE)]),
    ("owed restart of a unit the plan starts anyway", plan(Start("failed", CORE, "core")),
     [owed("restart", CORE)], [("start", CORE)]),
    ("owed action the plan has already", plan(Reload("changed", API, "api")),
     [owed("reload", API)], [("reload", API)]),
    ("owed restart of a unit no longer desired", plan(), [owed("restart", "atlas-gone.service")], []),
    ("owed restart of a unit not kept running", plan(), [owed("restart", JOB)], []),
    ("owed write and stop are re-derived from the host, not carried",
     plan(), [owed("write", "/etc/atlas/core.json"), owed("stop", API)], []),
    ("the same owed action twice is carried once", plan(),
     [owed("restart", API), owed("restart", API)], [("restart", API)]),
    ("phases: daemon-reload, reload, restart, start, then enables",
     plan(Start("new", API, "api"), Enable("not enabled", API, "api")),
     [owed("restart", CORE), owed("reload", CORE), owed("daemon-reload")],
     [("daemon-reload", ""), ("reload", CORE), ("restart", CORE), ("start", API), ("enable", API)]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "base", "pending", "expected"), CASES, ids=[c[0] for c in CASES])
def test_carried_over(
    case: str, base: Plan, pending: list[dict[str, str]], expected: list[tuple[str, str]]
) -> None:
    merged = carried_over(base, pending, RENDERED)
    assert [(a.verb, a.target) for a in merged.actions] == expected, case


def test_carried_actions_say_why_and_keep_their_types() -> None:
    merged = carried_over(plan(), [owed("restart", API), owed("daemon-reload")], RENDERED)
    assert isinstance(merged.actions[0], DaemonReload) and isinstance(merged.actions[1], Restart)
    assert {a.reason for a in merged.actions} == {"carried over from an interrupted reconcile"}
    assert merged.actions[1].component == "api"


def test_nothing_owed_keeps_the_plan_object() -> None:
    base = plan(Start("new", CORE, "core"))
    assert carried_over(base, [], RENDERED) is base
