"""What rendering produces: the files, folders and units a host should have.

Plain frozen data, shared by the stages after rendering (observe, plan, apply, verify)
and by the inventory that remembers what was applied. ``RenderContext`` is what
rendering needs to know of the host beyond the desired state: its layout and facts.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from reconciler import model
from reconciler.host.paths import HostLayout
from reconciler.host.releases import ReleaseRequest
from reconciler.render.sandbox import hidden_by_private_tmp
from seams import build
from seams.resources import PROJECT_ROOT

FileKind = Literal["unit", "config", "env"]


@dataclass(frozen=True)
class DesiredFile:
    path: PurePosixPath
    content: bytes = field(repr=False)
    mode: int
    kind: FileKind
    component: str
    # env files: secret name → keyed digest. Plans compare these, never values.
    secret_digests: Mapping[str, str] = field(default_factory=dict)

    @property
    def sensitive(self) -> bool:
        """Never shown in a plan or diff."""
        return self.kind == "env"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class DesiredDirectory:
    path: PurePosixPath
    mode: int


@dataclass(frozen=True)
class Probe:
    url: str
    interval_s: float
    timeout_s: float
    failure_threshold: int


@dataclass(frozen=True)
class UnitSpec:
    """A unit the host should have, and how to tell it is healthy."""

    name: str  # "atlas-api.service", "atlas-core@2.service", "atlas-services.timer"
    file: PurePosixPath  # the unit file defining it (the template for instances)
    component: str
    start: bool  # keep it running
    enable: bool
    probe: Probe | None = None
    strategy: model.Strategy | None = None
    version: str | None = None  # the Deployment's version (the release it runs)

    @property
    def template(self) -> str | None:
        """``atlas-core@.service`` for an instance ``atlas-core@2.service``."""
        if "@" not in self.name:
            return None
        prefix, _, rest = self.name.partition("@")
        return f"{prefix}@.{rest.rpartition('.')[2]}"


@dataclass(frozen=True)
class DesiredRelease:
    """An Atlas release the units run, installed at ``path`` (``<state>/releases/<v>``)."""

    request: ReleaseRequest
    path: PurePosixPath

    @property
    def version(self) -> str:
        return self.request.version


@dataclass(frozen=True)
class Rendered:
    files: tuple[DesiredFile, ...]
    directories: tuple[DesiredDirectory, ...]
    units: tuple[UnitSpec, ...]  # in start order
    releases: tuple[DesiredRelease, ...] = ()  # empty without spec.releases
    keep_releases: int = 0  # spec.releases.keep; 0: releases are not managed
    releases_dir: PurePosixPath | None = None  # where they are installed (when managed)

    def file(self, path: PurePosixPath | str) -> DesiredFile | None:
        target = PurePosixPath(path)
        return next((f for f in self.files if f.path == target), None)


NOTHING = Rendered((), (), ())


@dataclass(frozen=True)
class HostFacts:
    """What rendering needs to know about this host beyond its layout."""

    python: str  # the interpreter that runs ``-m atlas``
    # Folders the services must see that PrivateTmp= would hide (an installation or
    # checkout under /tmp or /var/tmp): bound read-only into their namespace.
    bind_read_only: tuple[str, ...] = ()
    # the version of that installation: what a Deployment runs without spec.releases
    atlas_version: str = field(default_factory=build.version)
    # its code: a unit running it restarts when this changes (an upgrade in place)
    code: str = ""

    @classmethod
    def current(cls, python: str | None = None) -> HostFacts:
        """This installation: ``python`` (default: this interpreter) and what it needs."""
        python = python or sys.executable
        needed = {Path(python).parent.parent, Path(sys.prefix), PROJECT_ROOT}
        hidden = sorted(str(p) for p in needed if hidden_by_private_tmp(p.as_posix()))
        return cls(python, tuple(hidden), code=build.code_digest())


@dataclass(frozen=True)
class RenderContext:
    layout: HostLayout
    facts: HostFacts
    invocation: model.ReconcilerInvocation | None = None


def unit_names(component: str, replicas: int, template: bool = False) -> list[str]:
    """The units of a component: ``atlas-api.service``, or ``atlas-api@1.service`` … when
    it runs more than one replica or ``template`` (blueGreen starts ``@N+1`` … beside)."""
    base = f"atlas-{component}"
    if replicas > 1 or template:
        return [f"{base}@{i}.service" for i in range(1, replicas + 1)]
    return [f"{base}.service"]
