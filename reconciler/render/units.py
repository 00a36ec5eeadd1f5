"""Unit files from ``systemd/*.j2``, and the unit specs the later stages act on.

A service's ``X-Restart-Triggers=`` carries a hash of its config and of its env
file's secret digests, so a change restarts exactly the units that read it; the part
of a config a service re-reads on SIGHUP goes into ``X-Reload-Triggers=`` instead.
Rendered files never contain the git revision: a commit that changes nothing for a
unit leaves its files byte for byte the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler import model
from reconciler.quantities import systemd_timespan
from reconciler.render.desired import DesiredFile, Probe, UnitSpec, unit_names
from reconciler.render.envfiles import digest_of, env_file
from reconciler.render.inputs import Inputs
from reconciler.render.sandbox import access
from reconciler.render.text import (
    exec_line,
    json_bytes,
    probe_host,
    secret_variable,
    short_hash,
    template,
)


@dataclass(frozen=True)
class Service:
    """What rendering one component's service needs beyond its Deployment."""

    component: str
    config: Mapping[str, Any]
    env: DesiredFile
    command: Sequence[str]  # the atlas verb(s): ("core",), ("services", "run") …
    listen: str | None = None  # where its health check answers
    ports: Sequence[int] = ()
    reloadable: Mapping[str, Any] | None = None  # the config keys it re-reads on SIGHUP
    after: Sequence[str] = ()  # units that start before it
    scheme: str = "http"  # of its health check: https when it serves TLS


def _triggers(service: Service) -> tuple[str, str | None]:
    env_digest = digest_of(service.env)
    if service.reloadable is None:
        return short_hash(json_bytes(service.config), env_digest), None
    rest = {k: v for k, v in service.config.items() if k not in service.reloadable}
    return short_hash(json_bytes(rest), env_digest), short_hash(json_bytes(service.reloadable))


def _local(repo: str) -> list[str]:
    """A repository on this host's disk (a path or file:// URL), which the unit reads."""
    path = repo.removeprefix("file://")
    return [path] if path.startswith("/") else []


def _values(i: Inputs, service: Service, d: model.Deployment) -> dict[str, Any]:
    template_unit = d.replicas > 1 or d.strategy.blue_green is not None
    config_path = str(i.config_path(service.component))
    python, releases = i.ctx.facts.python, []
    if i.settings.releases is not None:  # the venv of its version's release
        python = str(i.layout.releases_dir / d.version / "bin/python")
        releases = [str(i.layout.releases_dir / d.version)]
    args = [python, "-m", "atlas", *service.command, "--config", config_path]
    if template_unit:
        args += ["--instance", "%i"]
    restart_trigger, reload_trigger = _triggers(service)
    if not releases:  # it runs the installation beside the reconciler: its code counts
        restart_trigger = short_hash(restart_trigger, i.ctx.facts.code)
    r = d.restart
    return {
        "environment": i.settings.name,
        "component": service.component,
        "version": d.version,
        "scope": i.layout.scope,
        "template": template_unit,
        "exec_start": exec_line(args),
        "env_file": str(service.env.path),
        "restart_trigger": restart_trigger,
        "reload_trigger": reload_trigger,
        "after": [*i.network_after, *service.after],
        "restart": {
            "policy": r.policy,
            "delay": systemd_timespan(r.delay_s),
            "burst": r.burst,
            "interval": systemd_timespan(r.interval_s),
        },
        "resources": d.resources,
        **access(
            writes=[str(i.layout.data_dir)] if i.layout.scope == "user" else [],
            reads=[str(i.layout.config_dir), *i.ctx.facts.bind_read_only, *releases],
        ).values(),
        "state_directory": "atlas/data",
        "proc_subset": service.component != "monitoring",
        "wanted_by": i.wanted_by,
    }


def service_files(
    i: Inputs, service: Service, d: model.Deployment
) -> tuple[list[DesiredFile], list[UnitSpec]]:
    """The config, env and unit file of one component, and a spec per unit it runs."""
    template_unit = d.replicas > 1 or d.strategy.blue_green is not None
    name = (
        f"atlas-{service.component}@.service"
        if template_unit
        else f"atlas-{service.component}.service"
    )
    unit_file = i.layout.unit_dir / name
    content = template(f"atlas-{service.component}.service.j2", u=_values(i, service, d))
    files = [
        DesiredFile(
            i.config_path(service.component),
            json_bytes(service.config),
            0o644,
            "config",
            service.component,
        ),
        service.env,
        DesiredFile(unit_file, content, 0o644, "unit", service.component),
    ]
    specs = []
    h = d.health
    for n, unit in enumerate(unit_names(service.component, d.replicas, template_unit)):
        probe = None
        if service.listen is not None and service.ports and h.path is not None:
            port = h.port or service.ports[min(n, len(service.ports) - 1)]
            url = f"{service.scheme}://{probe_host(service.listen)}:{port}{h.path}"
            probe = Probe(url, h.interval_s, h.timeout_s, h.failure_threshold)
        specs.append(
            UnitSpec(unit, unit_file, service.component, True, True, probe, d.strategy, d.version)
        )
    return files, specs


def services_timer(i: Inputs) -> tuple[DesiredFile, UnitSpec]:
    """The timer that runs the scheduled services job (its BackupPolicy's schedule)."""
    b = i.desired.backup
    path = i.layout.unit_dir / "atlas-services.timer"
    content = template(
        "atlas-services.timer.j2",
        u={
            "environment": i.settings.name,
            "policy": b.name if b else "none (default schedule)",
            "schedule": b.schedule if b else "hourly",
            "randomized_delay": systemd_timespan(b.randomized_delay_s)
            if b and b.randomized_delay_s
            else "0",
        },
    )
    return (
        DesiredFile(path, content, 0o644, "unit", "services"),
        UnitSpec("atlas-services.timer", path, "services", True, True),
    )


def reconciler_unit(
    i: Inputs, inv: model.ReconcilerInvocation
) -> tuple[list[DesiredFile], UnitSpec]:
    """``atlas-reconciler.service``: this reconciler, ``--watch``ing as it was invoked."""
    s = i.settings
    env = env_file(
        i, "reconciler", "atlas-reconciler", [s.webhook_secret] if s.webhook_secret else []
    )
    args = [
        i.ctx.facts.python, "-m", "atlas", "reconcile", "--watch",
        "--repo", inv.repo, "--ref", inv.ref, "--path", inv.path,
        "--env", s.name, "--scope", i.layout.scope,
        "--metrics-addr", f"{s.reconciler_metrics_listen}:{s.reconciler_metrics_port}",
        "--interval", f"{int(s.reconciler_interval_s)}s",
    ]  # fmt: skip
    if s.webhook_secret:
        args += ["--webhook-secret-env", secret_variable(s.webhook_secret)]
    if not s.self_heal:
        args.append("--no-self-heal")
    exec_start = exec_line(args)
    path = i.layout.unit_dir / "atlas-reconciler.service"
    content = template(
        "atlas-reconciler.service.j2",
        u={
            "environment": s.name,
            "exec_start": exec_start,
            "env_file": str(env.path),
            "restart_trigger": short_hash(exec_start, digest_of(env), i.ctx.facts.code),
            "after": i.network_after,
            **access(
                writes=[str(i.layout.unit_dir), str(i.layout.config_dir), str(i.layout.state_dir)],
                reads=[*_local(inv.repo), *i.ctx.facts.bind_read_only],
            ).values(),
            "wanted_by": i.wanted_by,
        },
    )
    url = f"http://{probe_host(s.reconciler_metrics_listen)}:{s.reconciler_metrics_port}/healthz"
    return (
        [env, DesiredFile(path, content, 0o644, "unit", "reconciler")],
        UnitSpec(
            "atlas-reconciler.service", path, "reconciler", True, True, Probe(url, 1.0, 30.0, 3)
        ),
    )
