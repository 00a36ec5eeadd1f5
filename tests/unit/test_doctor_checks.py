"""Each ``atlas doctor`` judge on facts that pass and facts that fail: a problem
always says how to fix it."""

from __future__ import annotations

import pytest

from reconciler.diagnose import checks as c
from reconciler.diagnose.gather import redact_url, repo_facts

NOW = 1_800_000_000.0

PASSING = [
    c.manager(c.ManagerFacts("user", "running", "257")),
    c.inventory(c.InventoryFacts([], [])),
    c.units([c.UnitFacts("atlas-api.service", "active", "running", True)], reachable=True),
    c.key_files([c.KeyFacts("/k/production.key", True, "", True)]),
    c.repository(c.RepoFacts("/srv/ops.git", "main", True, "a" * 40)),
    c.database(c.DatabaseFacts("/data/atlas.db", True, 4096, ["ok"])),
    c.disk(c.DiskFacts("/data", 100 << 30, 50 << 30)),
    c.clock(True),
    c.backups(c.BackupFacts("/data/backups", NOW - 3600), NOW),
    c.reconciler(
        c.ReconcilerFacts(True, "Synced", NOW - 60, "atlas-reconciler.service", True), NOW
    ),
    c.ports([c.PortFacts(18080, ["atlas-api.service"], {1234: "python3"}, frozenset({1234}))]),
]

FAILING = [
    (c.manager(c.ManagerFacts("user", None, error="Failed to connect to bus")), "unreachable"),
    (c.manager(c.ManagerFacts("system", "starting", "257")), "is starting"),
    (
        c.inventory(
            c.InventoryFacts([("/etc/atlas/core.json", "modified")], ["/u/atlas-x.service"])
        ),
        "1 resource(s) differ",
    ),
    (
        c.units(
            [c.UnitFacts("atlas-api.service", "failed", "failed", True, ["Traceback: boom"])],
            reachable=True,
        ),
        "not running: atlas-api.service",
    ),
    (
        c.key_files([c.KeyFacts("/k/p.key", True, "key file /k/p.key is readable by others")]),
        "1 key",
    ),
    (c.key_files([c.KeyFacts("/k/p.key", False, required=True)]), "1 key"),
    (c.repository(c.RepoFacts("/srv/ops.git", "main", False, error="not found")), "unreachable"),
    (c.repository(c.RepoFacts("/srv/ops.git", "nope", True, None)), "no branch or tag 'nope'"),
    (c.database(c.DatabaseFacts("/data/atlas.db", False)), "does not exist"),
    (
        c.database(c.DatabaseFacts("/data/atlas.db", True, 10, ["*** in database main ***"])),
        "fails integrity_check",
    ),
    (
        c.database(c.DatabaseFacts("/data/atlas.db", True, 10, error="file is not a database")),
        "cannot be read",
    ),
    (c.disk(c.DiskFacts("/data", 100 << 30, 5 << 30)), "5.0 GiB free"),
    (c.disk(c.DiskFacts("/data", 4 << 30, 1 << 29)), "512.0 MiB free"),
    (c.clock(False), "not synchronised"),
    (c.backups(c.BackupFacts("/data/backups", None), NOW), "no backup"),
    (c.backups(c.BackupFacts("/data/backups", NOW - 30 * 3600), NOW), "30.0 h old"),
    (c.reconciler(c.ReconcilerFacts(False), NOW), "nothing was reconciled"),
    (
        c.reconciler(
            c.ReconcilerFacts(True, "Synced", NOW - 60, "atlas-reconciler.service", False), NOW
        ),
        "is not running",
    ),
    (c.reconciler(c.ReconcilerFacts(True, "Synced", NOW - 7200), NOW), "120 min ago"),
    (
        c.reconciler(
            c.ReconcilerFacts(True, "OutOfSync", NOW - 60, fetch_error="cannot fetch"), NOW
        ),
        "OutOfSync: cannot fetch",
    ),
    (
        c.ports([c.PortFacts(18080, ["atlas-api.service"], {99: "nginx"}, frozenset({1234}))]),
        "1 port(s) in use",
    ),
    (
        c.ports(
            [
                c.PortFacts(
                    18080, ["atlas-api.service"], {0: "a process of another user"}, frozenset()
                )
            ]
        ),
        "1 port(s) in use",
    ),
]


@pytest.mark.parametrize("finding", PASSING, ids=lambda f: f.check)
def test_a_healthy_fact_passes(finding: c.Finding) -> None:
    assert finding.verdict == "ok", finding
    assert not finding.fix


@pytest.mark.parametrize(("finding", "says"), FAILING, ids=lambda f: getattr(f, "check", ""))
def test_a_broken_fact_is_a_problem_with_its_fix(finding: c.Finding, says: str) -> None:
    assert finding.verdict == "problem"
    assert says in finding.message
    assert finding.fix


def test_every_check_has_a_passing_and_a_failing_case() -> None:
    assert {f.check for f in PASSING} == {f.check for f, _ in FAILING}


def test_facts_that_cannot_be_read_are_unknown_not_problems() -> None:
    for finding in (
        c.manager(c.ManagerFacts("user", None, error="--root /x", asked=False)),
        c.units([], reachable=False),
        c.clock(None),
        c.database(c.DatabaseFacts(None)),
        c.disk(None),
        c.backups(c.BackupFacts(None), NOW),
        c.repository(c.RepoFacts(None, None)),
    ):
        assert finding.verdict == "unknown", finding


def test_journal_lines_of_a_failed_unit_are_in_the_details() -> None:
    f = c.units([c.UnitFacts("atlas-core.service", "failed", "failed", True, ["boom"])], True)
    assert f.details == ("atlas-core.service: failed (failed)", "  boom")


def test_a_port_held_by_an_unknown_listener_beside_our_running_unit_is_not_blamed() -> None:
    f = c.ports([c.PortFacts(18080, ["atlas-api.service"], {0: "?"}, frozenset({1234}))])
    assert f.verdict == "ok"


def test_credentials_in_a_repository_url_never_show() -> None:
    assert redact_url("https://bot:s3cret-token@git.example.com/ops.git") == (
        "https://git.example.com/ops.git"
    )
    facts = repo_facts(
        {"repo": "https://bot:s3cret-token@git.example.com/ops.git", "ref": "main"},
        lambda url: ({}, f"fatal: unable to access '{url}': 403"),
    )
    finding = c.repository(facts)
    assert finding.verdict == "problem"
    assert "s3cret-token" not in str(finding.as_dict())


def test_a_ref_resolves_from_heads_or_tags() -> None:
    refs = {"refs/heads/main": "a" * 40, "refs/tags/v1": "b" * 40, "HEAD": "a" * 40}
    assert repo_facts({"repo": "r", "ref": "v1"}, lambda u: (refs, "")).resolved == "b" * 40
    assert repo_facts({"repo": "r", "ref": None}, lambda u: (refs, "")).resolved == "a" * 40
    assert repo_facts({"repo": "r", "ref": "gone"}, lambda u: (refs, "")).resolved is None
