"""A failed verdict says why in the unit's own words: its last journal lines, with
every secret value hidden (reconciler.verify.explained)."""

from __future__ import annotations

from reconciler.host.testing import FakeRuntime
from reconciler.verify import UnitHealth, Verdict, explained, redact


def test_secrets_are_hidden_longest_first() -> None:
    text = "token abcdef and abc and abcdefgh"
    assert redact(text, ["abc", "abcdefgh"]) == "token «hidden»def and «hidden» and «hidden»"
    assert redact("a b", ["a", ""]) == "a b"  # too short to hide without hiding everything


def test_only_failed_units_are_explained() -> None:
    runtime = FakeRuntime()
    runtime.journals = {
        "atlas-api.service": ["bind: permission denied", "exiting with s3cr3t"],
        "atlas-core.service": ["fine"],
    }
    verdict = Verdict(
        False,
        "atlas-api.service: failed",
        (
            UnitHealth("atlas-api.service", False, "failed"),
            UnitHealth("atlas-core.service", False, "not verified (another unit failed first)"),
        ),
    )
    got = explained(verdict, runtime, ["s3cr3t"])
    assert got.reason == (
        "atlas-api.service: failed; last journal lines of atlas-api.service: "
        "bind: permission denied | exiting with «hidden»"
    )
    assert not got.ok and got.units == verdict.units


def test_no_journal_leaves_the_reason_alone() -> None:
    verdict = Verdict(False, "x: failed", (UnitHealth("x", False, "failed"),))
    assert explained(verdict, FakeRuntime()) == verdict
