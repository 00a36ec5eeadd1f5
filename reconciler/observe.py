"""Observe the host: the files Atlas cares about and the state of its units. Reads only.

``observe`` looks at every path the desired state or the inventory mentions (under
``--root``) and asks the Runtime for the state of every unit either mentions. With
no Runtime (a dry run against a folder), unit states are unknown and the planner
treats units as not running.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from reconciler.host.paths import HostLayout
from reconciler.host.releases import InstalledRelease, read_installed
from reconciler.host.runtime import Runtime, UnitState
from reconciler.inventory import Inventory
from reconciler.render.desired import Rendered


@dataclass(frozen=True)
class ObservedFile:
    content: bytes | None = field(default=None, repr=False)  # None: missing
    mode: int | None = None

    @property
    def exists(self) -> bool:
        return self.content is not None


MISSING = ObservedFile()


@dataclass(frozen=True)
class Observed:
    files: Mapping[PurePosixPath, ObservedFile]
    directories: Mapping[PurePosixPath, bool]
    units: Mapping[str, UnitState] | None  # None: no runtime to ask
    releases: Mapping[str, InstalledRelease] = field(default_factory=dict)

    def file(self, path: PurePosixPath) -> ObservedFile:
        return self.files.get(path, MISSING)

    def unit(self, name: str) -> UnitState:
        if self.units is None:
            return UnitState(name)
        return self.units.get(name, UnitState(name))


def read_file(layout: HostLayout, path: PurePosixPath) -> ObservedFile:
    disk = layout.on_disk(path)
    try:
        fd = os.open(disk, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return MISSING
    except OSError:  # a symlink put in our place, a permission problem…
        return ObservedFile(b"", None)
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            return ObservedFile(b"", None)
        return ObservedFile(fh.read(), stat.S_IMODE(info.st_mode))


def observe(
    layout: HostLayout, rendered: Rendered, inventory: Inventory, runtime: Runtime | None
) -> Observed:
    paths = {f.path for f in rendered.files} | set(inventory.files)
    files = {p: read_file(layout, p) for p in sorted(paths)}
    directories = {d.path: layout.on_disk(d.path).is_dir() for d in rendered.directories}
    units: dict[str, UnitState] | None = None
    if runtime is not None:
        names = sorted({u.name for u in rendered.units} | set(inventory.units))
        units = runtime.unit_states(names)
    releases = read_installed(layout.on_disk(layout.releases_dir)) if rendered.keep_releases else {}
    return Observed(files, directories, units, releases)


def simulated(rendered: Rendered) -> Observed:
    """The host as it would be once ``rendered`` is applied and healthy (for PR plans)."""
    files = {f.path: ObservedFile(f.content, f.mode) for f in rendered.files}
    directories = {d.path: True for d in rendered.directories}
    units = {
        u.name: UnitState(
            u.name,
            "loaded",
            "active" if u.start else "inactive",
            "running" if u.start else "dead",
            "enabled" if u.enable else "static",
        )
        for u in rendered.units
    }
    releases = {r.version: InstalledRelease(r.version, r.request.sha256 or "", 0.0)
                for r in rendered.releases}  # fmt: skip
    return Observed(files, directories, units, releases)
