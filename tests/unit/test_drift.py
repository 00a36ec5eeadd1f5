"""Drift: how the host differs from what Atlas last applied, case by case."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from reconciler.drift import DRIFT_KINDS, by_kind, detect
from reconciler.inventory import Inventory, InventoryFile, InventoryUnit, content_digest
from reconciler.observe import Observed, ObservedFile
from seams.systemd import UnitState

KEY = b"k" * 32
CONFIG = PurePosixPath("/etc/atlas/core.json")
ENV = PurePosixPath("/etc/atlas/core.env")
UNIT = "atlas-core.service"
TIMER = "atlas-services.timer"


def inventory() -> Inventory:
    return Inventory.from_parts(
        [
            InventoryFile(CONFIG, content_digest(b"{}", "config", KEY), 0o644, "config", "core"),
            InventoryFile(ENV, content_digest(b"A=1\n", "env", KEY), 0o600, "env", "core"),
        ],
        [
            InventoryUnit(UNIT, "core", PurePosixPath("/u/atlas-core.service"), True, True),
            InventoryUnit(TIMER, "services", PurePosixPath("/u/t.timer"), True, True),
        ],
    )


def running(name: str, **kw: object) -> UnitState:
    values: dict[str, object] = {
        "name": name, "load_state": "loaded", "active_state": "active",
        "sub_state": "running", "unit_file_state": "enabled",
    }  # fmt: skip
    values.update(kw)
    return UnitState(**values)  # type: ignore[arg-type]


def host(
    config: ObservedFile | None = None,
    env: ObservedFile | None = None,
    units: dict[str, UnitState] | str | None = "up",
) -> Observed:
    files = {
        CONFIG: config or ObservedFile(b"{}", 0o644),
        ENV: env or ObservedFile(b"A=1\n", 0o600),
    }
    if units == "up":
        units = {UNIT: running(UNIT), TIMER: running(TIMER, sub_state="waiting")}
    return Observed(files, {}, units)  # type: ignore[arg-type]


CASES = [
    # (case, observed host, expected (kind, target) pairs)
    ("as applied", host(), []),
    ("config edited by hand", host(config=ObservedFile(b'{"x": 1}', 0o644)),
     [("file-modified", str(CONFIG))]),
    ("config removed", host(config=ObservedFile()), [("file-missing", str(CONFIG))]),
    ("config re-moded", host(config=ObservedFile(b"{}", 0o666)), [("file-mode", str(CONFIG))]),
    ("env file edited (compared by HMAC, never by value)",
     host(env=ObservedFile(b"A=2\n", 0o600)), [("file-modified", str(ENV))]),
    ("unit stopped", host(units={UNIT: running(UNIT, active_state="inactive", sub_state="dead"),
                                 TIMER: running(TIMER)}), [("unit-stopped", UNIT)]),
    ("unit failed", host(units={UNIT: running(UNIT, active_state="failed", sub_state="failed"),
                                TIMER: running(TIMER)}), [("unit-failed", UNIT)]),
    ("unit disabled", host(units={UNIT: running(UNIT, unit_file_state="disabled"),
                                  TIMER: running(TIMER)}), [("unit-disabled", UNIT)]),
    ("unit stopped and disabled",
     host(units={UNIT: running(UNIT, active_state="inactive", unit_file_state="disabled"),
                 TIMER: running(TIMER)}), [("unit-stopped", UNIT), ("unit-disabled", UNIT)]),
    ("no service manager to ask: units unknown, files still compared",
     host(config=ObservedFile(), units=None), [("file-missing", str(CONFIG))]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "observed", "expected"), CASES, ids=[c[0] for c in CASES])
def test_detect(case: str, observed: Observed, expected: list[tuple[str, str]]) -> None:
    found = detect(inventory(), observed, KEY)
    assert [(d.kind, d.target) for d in found] == expected, case


def test_by_kind_counts_every_kind_even_at_zero() -> None:
    found = detect(inventory(), host(config=ObservedFile()), KEY)
    counts = by_kind(found)
    assert set(counts) == set(DRIFT_KINDS)
    assert counts["file-missing"] == 1 and sum(counts.values()) == 1


def test_env_digest_depends_on_the_host_key() -> None:
    """Another host's key gives another digest: the state DB is no oracle for values."""
    assert content_digest(b"A=1\n", "env", KEY) != content_digest(b"A=1\n", "env", b"x" * 32)
    assert content_digest(b"{}", "config", KEY) == content_digest(b"{}", "config", b"x" * 32)
