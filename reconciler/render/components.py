"""Render the desired state into files: one row of ``COMPONENTS`` per platform component.

Pure: (desired state, render context) → ``Rendered``. Each row says what the
component's service reads and how a change reaches it: its JSON config
(``configs``), the secrets its env file holds (``envfiles``), the ``atlas`` verb its
unit runs, where its health check answers, which part of its config it re-reads on
SIGHUP (atlas-monitoring: rules and channels), and which components start before it.
The services component runs from a timer (its BackupPolicy's schedule), not as a
long-running service. With ``spec.reconciler.enabled``, the reconciler renders its
own unit too. Nothing here writes to disk.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from reconciler import model
from reconciler.host.releases import ReleaseRequest
from reconciler.render import configs
from reconciler.render.desired import (
    DesiredDirectory,
    DesiredFile,
    DesiredRelease,
    RenderContext,
    Rendered,
    UnitSpec,
    unit_names,
)
from reconciler.render.envfiles import env_file
from reconciler.render.inputs import Inputs
from reconciler.render.units import Service, reconciler_unit, service_files, services_timer

Listen = Callable[[model.Settings, model.Deployment], tuple[str, list[int]]]


@dataclass(frozen=True)
class Component:
    name: str
    config: Callable[[Inputs, model.Deployment], configs.Config]
    command: tuple[str, ...]
    secrets: Callable[[model.DesiredState], list[str]] = lambda d: []
    listen: Listen | None = None  # (host, ports) of its health check, per replica
    reloadable: Callable[[Inputs], configs.Config] | None = None
    after: tuple[str, ...] = ()  # components whose units start first
    scheduled: bool = False  # run from a timer, not kept running
    scheme: Callable[[model.Settings], str] = lambda s: "http"  # of its health check


def _backup_secrets(d: model.DesiredState) -> list[str]:
    b = d.backup
    return [b.encryption_key_secret] if b and b.encrypt and b.encryption_key_secret else []


def _source_secrets(d: model.DesiredState) -> list[str]:
    return [name for src in d.sources for name in src.secrets]


def _channel_secrets(d: model.DesiredState) -> list[str]:
    return [name for c in d.channels for name in c.secret_fields.values()]


def _api_secrets(d: model.DesiredState) -> list[str]:
    s = d.settings
    tls = [s.api_tls.cert_secret, s.api_tls.key_secret] if s.api_tls else []
    return [t.secret for t in s.api_tokens] + [name for name in tls if name]


COMPONENTS: dict[str, Component] = {
    "core": Component(
        "core",
        configs.core,
        ("core",),
        _source_secrets,
        listen=lambda s, d: (
            s.core_metrics_listen,
            [s.core_metrics_port + n for n in range(d.replicas)],
        ),
    ),
    "api": Component(
        "api",
        configs.api,
        ("api",),
        _api_secrets,
        listen=lambda s, d: (s.api_listen, [s.api_port]),
        after=("core",),
        scheme=lambda s: "https" if s.api_tls else "http",
    ),
    "services": Component(
        "services", configs.services, ("services", "run"), _backup_secrets, scheduled=True
    ),
    "monitoring": Component(
        "monitoring",
        configs.monitoring,
        ("monitor",),
        _channel_secrets,
        listen=lambda s, d: (s.monitoring_listen, [s.monitoring_port]),
        reloadable=configs.monitoring_reloadable,
        after=("core", "api"),
    ),
}
assert tuple(COMPONENTS) == model.COMPONENTS, "one row per component, in start order"


def _service(i: Inputs, c: Component, d: model.Deployment) -> Service:
    listen, ports = c.listen(i.settings, d) if c.listen else (None, [])
    after = [
        unit
        for name in c.after
        if (other := i.desired.deployment(name)) is not None
        for unit in unit_names(name, other.replicas, other.strategy.blue_green is not None)
    ]
    return Service(
        component=c.name,
        config=c.config(i, d),
        env=env_file(i, c.name, f"atlas-{c.name}", c.secrets(i.desired)),
        command=c.command,
        listen=listen,
        ports=ports,
        reloadable=c.reloadable(i) if c.reloadable else None,
        after=after,
        scheme=c.scheme(i.settings),
    )


def render(desired: model.DesiredState, ctx: RenderContext) -> Rendered:
    i = Inputs(desired, ctx)
    files: list[DesiredFile] = []
    units: list[UnitSpec] = []
    for name, c in COMPONENTS.items():
        d = desired.deployment(name)
        if d is None:
            continue
        made, specs = service_files(i, _service(i, c, d), d)
        files += made
        if c.scheduled:  # the job runs from its timer
            timer, timer_spec = services_timer(i)
            files.append(timer)
            specs = [replace(s, start=False, enable=False, strategy=None) for s in specs]
            specs.append(timer_spec)
        units += specs
    if desired.settings.reconciler_enabled and ctx.invocation is not None:
        made, spec = reconciler_unit(i, ctx.invocation)
        files += made
        units.append(spec)
    directories = (DesiredDirectory(ctx.layout.data_dir, 0o750),)
    releases = desired.settings.releases
    if releases is None:
        return Rendered(tuple(files), directories, tuple(units))
    return Rendered(
        tuple(files),
        directories,
        tuple(units),
        _releases(desired, ctx),
        releases.keep,
        ctx.layout.releases_dir,
    )


def _releases(desired: model.DesiredState, ctx: RenderContext) -> tuple[DesiredRelease, ...]:
    """One release per version the Deployments name, with its wheel's sha256 if given."""
    assert desired.settings.releases is not None
    source = desired.settings.releases.source
    digests: dict[str, str | None] = {}
    for d in desired.deployments:
        digests[d.version] = digests.get(d.version) or d.sha256
    return tuple(
        DesiredRelease(ReleaseRequest(v, source, digest), ctx.layout.releases_dir / v)
        for v, digest in sorted(digests.items())
    )
