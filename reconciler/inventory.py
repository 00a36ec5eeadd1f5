"""What Atlas created on a host: the files it wrote and the units it runs.

The planner removes only what is listed here, so files and units Atlas did not
create are never touched. Env files are listed with keyed digests of their secrets
(never values or plain hashes), which is how a plan can say "secret X changed".
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from reconciler.render.desired import DesiredFile, Rendered, UnitSpec

SENSITIVE_KINDS = frozenset({"env"})


@dataclass(frozen=True)
class InventoryFile:
    path: PurePosixPath
    sha256: str  # content_digest(): sha256 hex, or an HMAC under the host key for env files
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
    def of(rendered: Rendered, host_key: bytes) -> Inventory:
        """The inventory a host has once ``rendered`` is applied."""
        return Inventory(
            files={f.path: file_entry(f, host_key) for f in rendered.files},
            units={u.name: unit_entry(u) for u in rendered.units},
        )

    @staticmethod
    def from_parts(files: Iterable[InventoryFile], units: Iterable[InventoryUnit]) -> Inventory:
        return Inventory({f.path: f for f in files}, {u.name: u for u in units})


def unit_entry(u: UnitSpec) -> InventoryUnit:
    return InventoryUnit(
        u.name, u.component, u.file, u.start, u.enable, u.probe.url if u.probe else None
    )


def content_digest(content: bytes, kind: str, host_key: bytes) -> str:
    """What the inventory remembers of a file's content.

    A plain SHA-256 for configs and units; for env files, which hold secret values,
    an HMAC under the host's own key, so the state database offers nothing to
    brute-force a weak secret against.
    """
    if kind in SENSITIVE_KINDS:
        return "hmac-sha256:" + hmac.new(host_key, content, hashlib.sha256).hexdigest()
    return hashlib.sha256(content).hexdigest()


def file_entry(f: DesiredFile, host_key: bytes) -> InventoryFile:
    return InventoryFile(
        f.path,
        content_digest(f.content, f.kind, host_key),
        f.mode,
        f.kind,
        f.component,
        dict(f.secret_digests),
    )
