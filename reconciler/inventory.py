"""What Atlas created on a host: the files it wrote and the units it runs.

The planner removes only what is listed here, so files and units Atlas did not
create are never touched. Env files are listed with keyed digests of their secrets
(never values or plain hashes), which is how a plan can say "secret X changed".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from reconciler.render import Rendered, UnitSpec


@dataclass(frozen=True)
class InventoryFile:
    path: PurePosixPath
    sha256: str
    mode: int
    kind: str  # unit | config | env
    component: str
    secret_digests: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class InventoryUnit:
    name: str
    component: str
    file: PurePosixPath
    start: bool
    enable: bool
    probe: str | None = None  # the HTTP health check URL, for `atlas status`


@dataclass(frozen=True)
class Inventory:
    files: Mapping[PurePosixPath, InventoryFile] = field(default_factory=dict)
    units: Mapping[str, InventoryUnit] = field(default_factory=dict)

    @staticmethod
    def of(rendered: Rendered) -> Inventory:
        """The inventory a host has once ``rendered`` is applied."""
        return Inventory(
            files={
                f.path: InventoryFile(
                    f.path, f.sha256, f.mode, f.kind, f.component, dict(f.secret_digests)
                )
                for f in rendered.files
            },
            units={u.name: unit_entry(u) for u in rendered.units},
        )

    @staticmethod
    def from_parts(files: Iterable[InventoryFile], units: Iterable[InventoryUnit]) -> Inventory:
        return Inventory({f.path: f for f in files}, {u.name: u for u in units})


def unit_entry(u: UnitSpec) -> InventoryUnit:
    return InventoryUnit(
        u.name, u.component, u.file, u.start, u.enable, u.probe.url if u.probe else None
    )
