"""Render the desired state into files: unit files, JSON configs, env files.

Pure: (desired state, host layout, host facts) → ``Rendered``. Unit files come from
the Jinja2 templates in ``systemd/``, env files from ``templates/env.j2``, both with
StrictUndefined. Nothing here writes to disk.

What a service reads and how a change reaches it:

* ``<config>/<component>.json`` — non-secret settings (DESIGN.md §1); its hash goes
  into the unit's ``X-Restart-Triggers=``, so a config change restarts exactly the
  units that read it. For atlas-monitoring, rules and channels go into
  ``X-Reload-Triggers=`` instead: the agent re-reads them on SIGHUP.
* ``<config>/<component>.env`` (0600) — the secrets the component needs, as
  ``ATLAS_SECRET_<NAME>`` variables; its keyed digest joins the restart trigger.
  Rendered files never contain the git revision, so a commit that changes nothing
  for a unit leaves its files byte-for-byte the same.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import jinja2

from reconciler import model
from reconciler.errors import RenderError
from reconciler.paths import HostLayout
from reconciler.units import systemd_timespan
from seams.resources import MESSAGE_TEMPLATE_DIR, PROJECT_ROOT, SYSTEMD_TEMPLATE_DIR

CONFIG_VERSION = 1
_PRIVATE_TMP_DIRS = ("/tmp", "/var/tmp")  # noqa: S108 - what PrivateTmp= replaces
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

    @property
    def template(self) -> str | None:
        """``atlas-core@.service`` for an instance ``atlas-core@2.service``."""
        if "@" not in self.name:
            return None
        prefix, _, rest = self.name.partition("@")
        return f"{prefix}@.{rest.rpartition('.')[2]}"


@dataclass(frozen=True)
class Rendered:
    files: tuple[DesiredFile, ...]
    directories: tuple[DesiredDirectory, ...]
    units: tuple[UnitSpec, ...]  # in start order

    def file(self, path: PurePosixPath | str) -> DesiredFile | None:
        target = PurePosixPath(path)
        return next((f for f in self.files if f.path == target), None)


@dataclass(frozen=True)
class HostFacts:
    """What rendering needs to know about this host beyond its layout."""

    python: str  # the interpreter that runs ``-m atlas``
    # Folders the services must see that PrivateTmp= would hide (an installation or
    # checkout under /tmp or /var/tmp): bound read-only into their namespace.
    bind_read_only: tuple[str, ...] = ()

    @classmethod
    def current(cls, python: str | None = None) -> HostFacts:
        """This installation: ``python`` (default: this interpreter) and what it needs."""
        python = python or sys.executable
        needed = {Path(python).parent.parent, Path(sys.prefix), PROJECT_ROOT}
        hidden = sorted(
            str(p)
            for p in needed
            if any(p == Path(t) or Path(t) in p.parents for t in _PRIVATE_TMP_DIRS)
        )
        return cls(python, tuple(hidden))


@dataclass(frozen=True)
class RenderContext:
    layout: HostLayout
    facts: HostFacts
    invocation: model.ReconcilerInvocation | None = None


# --------------------------------------------------------------------------- helpers


@cache
def _jinja() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(SYSTEMD_TEMPLATE_DIR), str(MESSAGE_TEMPLATE_DIR)]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - unit and env files, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _template(name: str, **values: Any) -> bytes:
    try:
        text = _jinja().get_template(name).render(**values)
    except jinja2.TemplateError as exc:
        raise RenderError(f"template {name}: {exc}") from exc
    # Blank lines left by conditional blocks go; one stays before each [Section].
    raw = [line.rstrip() for line in text.splitlines()]
    lines = [
        line
        for i, line in enumerate(raw)
        if line or (i + 1 < len(raw) and raw[i + 1].startswith("[") and i > 0)
    ]
    return ("\n".join(lines) + "\n").encode()


def _hash(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\x00")
    return h.hexdigest()[:16]


def _json(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def _exec_quote(arg: str) -> str:
    """Quote one argument for a unit file's ExecStart= line."""
    if arg and all(c.isalnum() or c in "/._-=:@%+," for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def env_quote(value: str) -> str:
    """A value for a systemd EnvironmentFile: double quotes, backslash escapes."""
    if "\x00" in value:
        raise RenderError("a secret value contains a NUL byte, which no environment can hold")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def secret_variable(name: str) -> str:
    return "ATLAS_SECRET_" + name.upper()


def _probe_host(listen: str) -> str:
    if listen in ("0.0.0.0", ""):  # noqa: S104 - mapping a wildcard to loopback
        return "127.0.0.1"
    if listen == "::":
        return "[::1]"
    return f"[{listen}]" if ":" in listen and not listen.startswith("[") else listen


# --------------------------------------------------------------------------- render


def unit_names(component: str, replicas: int) -> list[str]:
    base = f"atlas-{component}"
    if replicas > 1:
        return [f"{base}@{i}.service" for i in range(1, replicas + 1)]
    return [f"{base}.service"]


def render(desired: model.DesiredState, ctx: RenderContext) -> Rendered:
    return _Renderer(desired, ctx).run()


class _Renderer:
    def __init__(self, desired: model.DesiredState, ctx: RenderContext) -> None:
        self.d = desired
        self.ctx = ctx
        self.layout = ctx.layout
        self.s = desired.settings
        self.files: list[DesiredFile] = []
        self.units: list[UnitSpec] = []
        data = self.layout.data_dir
        self.database = PurePosixPath(self.s.database_path)
        if not self.database.is_absolute():
            self.database = data / self.database

    # ---- shared pieces

    def config_path(self, component: str) -> PurePosixPath:
        return self.layout.config_dir / f"{component}.json"

    def env_path(self, component: str) -> PurePosixPath:
        return self.layout.config_dir / f"{component}.env"

    def base_config(self, component: str, deployment: model.Deployment | None) -> dict[str, Any]:
        return {
            "configVersion": CONFIG_VERSION,
            "component": component,
            "environment": self.s.name,
            "version": deployment.version if deployment else None,
            "logLevel": self.s.log_level,
            "dataDir": str(self.layout.data_dir),
            "database": {"path": str(self.database), "busyTimeoutSeconds": self.s.busy_timeout_s},
        }

    def env_file(self, component: str, unit: str, secrets: Sequence[str]) -> DesiredFile:
        variables = []
        digests = {}
        for name in sorted(set(secrets)):
            value = self.d.secrets[name]
            digests[name] = value.digest
            shown = env_quote(value.reveal()) if not value.sealed else env_quote(value.digest)
            variables.append((secret_variable(name), shown))
        content = _template("env.j2", environment=self.s.name, unit=unit, variables=variables)
        return DesiredFile(self.env_path(component), content, 0o600, "env", component, digests)

    def unit_values(
        self,
        component: str,
        deployment: model.Deployment,
        exec_args: list[str],
        restart_trigger: str,
        reload_trigger: str | None = None,
        after: Sequence[str] = (),
    ) -> dict[str, Any]:
        template = deployment.replicas > 1
        args = [self.ctx.facts.python, "-m", "atlas", *exec_args]
        if template:
            args += ["--instance", "%i"]
        r = deployment.restart
        return {
            "environment": self.s.name,
            "component": component,
            "version": deployment.version,
            "scope": self.layout.scope,
            "template": template,
            "exec_start": " ".join(_exec_quote(a) for a in args),
            "env_file": str(self.env_path(component)),
            "restart_trigger": restart_trigger,
            "reload_trigger": reload_trigger,
            "after": [*self._network_after(), *after],
            "restart": {
                "policy": r.policy,
                "delay": systemd_timespan(r.delay_s),
                "burst": r.burst,
                "interval": systemd_timespan(r.interval_s),
            },
            "resources": deployment.resources,
            "read_write": [str(self.layout.data_dir)] if self.layout.scope == "user" else [],
            "bind_read_only": list(self.ctx.facts.bind_read_only),
            "state_directory": "atlas/data",
            "proc_subset": component != "monitoring",
            "wanted_by": self._wanted_by(),
        }

    def _network_after(self) -> list[str]:
        return ["network-online.target"] if self.layout.scope == "system" else []

    def _wanted_by(self) -> str:
        return "multi-user.target" if self.layout.scope == "system" else "default.target"

    def unit_file_name(self, component: str, deployment: model.Deployment) -> str:
        return (
            f"atlas-{component}@.service"
            if deployment.replicas > 1
            else f"atlas-{component}.service"
        )

    def add_service(
        self,
        component: str,
        deployment: model.Deployment,
        config: dict[str, Any],
        env: DesiredFile,
        exec_args: list[str],
        probe_ports: list[int] | None,
        probe_host: str,
        reload_part: Mapping[str, Any] | None = None,
        after: Sequence[str] = (),
    ) -> None:
        config_bytes = _json(config)
        env_digest = _hash(*(f"{k}={v}" for k, v in sorted(env.secret_digests.items())))
        if reload_part is not None:
            rest = {k: v for k, v in config.items() if k not in reload_part}
            restart_trigger = _hash(_json(rest), env_digest)
            reload_trigger: str | None = _hash(_json(dict(reload_part)))
        else:
            restart_trigger = _hash(config_bytes, env_digest)
            reload_trigger = None
        values = self.unit_values(
            component, deployment, exec_args, restart_trigger, reload_trigger, after
        )
        unit_file = self.layout.unit_dir / self.unit_file_name(component, deployment)
        content = _template(f"atlas-{component}.service.j2", u=values)
        self.files += [
            DesiredFile(self.config_path(component), config_bytes, 0o644, "config", component),
            env,
            DesiredFile(unit_file, content, 0o644, "unit", component),
        ]
        h = deployment.health
        for i, name in enumerate(unit_names(component, deployment.replicas)):
            probe = None
            if probe_ports is not None and h.path is not None:
                port = h.port or probe_ports[min(i, len(probe_ports) - 1)]
                probe = Probe(
                    f"http://{probe_host}:{port}{h.path}",
                    h.interval_s,
                    h.timeout_s,
                    h.failure_threshold,
                )
            self.units.append(
                UnitSpec(name, unit_file, component, True, True, probe, deployment.strategy)
            )

    # ---- components

    def run(self) -> Rendered:
        for component in model.COMPONENTS:
            deployment = self.d.deployment(component)
            if deployment is not None:
                getattr(self, f"_{component}")(deployment)
        if self.s.reconciler_enabled and self.ctx.invocation is not None:
            self._reconciler(self.ctx.invocation)
        directories = (DesiredDirectory(self.layout.data_dir, 0o750),)
        return Rendered(tuple(self.files), directories, tuple(self.units))

    def _core(self, d: model.Deployment) -> None:
        s = self.s
        config = self.base_config("core", d)
        config.update(
            metrics={"listen": s.core_metrics_listen, "port": s.core_metrics_port},
            replicas=d.replicas,
            fetch={
                "userAgent": s.user_agent or f"Atlas/{d.version} (+https://atlas.invalid/bot)",
                "timeoutSeconds": s.fetch_timeout_s,
                "maxBodyBytes": s.max_body_bytes,
                "maxRedirects": s.max_redirects,
                "concurrency": s.core_concurrency,
            },
            sources=[_source_config(src) for src in self.d.sources],
        )
        env = self.env_file("core", "atlas-core", [])
        ports = [s.core_metrics_port + i for i in range(d.replicas)]
        self.add_service(
            "core",
            d,
            config,
            env,
            ["core", "--config", str(self.config_path("core"))],
            ports,
            _probe_host(s.core_metrics_listen),
        )

    def _api(self, d: model.Deployment) -> None:
        s = self.s
        config = self.base_config("api", d)
        config.update(
            listen=s.api_listen,
            port=s.api_port,
            pageSize=s.page_size,
            replicas=d.replicas,
            maintenanceFile=str(self.layout.data_dir / "maintenance.json"),
        )
        env = self.env_file("api", "atlas-api", [])
        after = self._units_of("core")
        self.add_service(
            "api",
            d,
            config,
            env,
            ["api", "--config", str(self.config_path("api"))],
            [s.api_port],
            _probe_host(s.api_listen),
            after=after,
        )

    def _services(self, d: model.Deployment) -> None:
        b = self.d.backup
        config = self.base_config("services", d)
        config["backup"] = (
            None
            if b is None
            else {
                "policy": b.name,
                "destination": str(self.layout.data_dir / b.destination),
                "keepLast": b.keep_last,
                "maxAgeSeconds": b.max_age_s,
                "encrypt": b.encrypt,
                "encryptionKeyEnv": secret_variable(b.encryption_key_secret)
                if b.encrypt and b.encryption_key_secret
                else None,
                "verify": b.verify,
            }
        )
        secrets = [b.encryption_key_secret] if b and b.encrypt and b.encryption_key_secret else []
        env = self.env_file("services", "atlas-services", secrets)
        self.add_service(
            "services",
            d,
            config,
            env,
            ["services", "run", "--config", str(self.config_path("services"))],
            None,
            "",
        )
        # The job runs from its timer, not as a long-running service.
        self.units[-1] = UnitSpec(
            self.units[-1].name, self.units[-1].file, "services", False, False
        )
        timer_path = self.layout.unit_dir / "atlas-services.timer"
        timer = _template(
            "atlas-services.timer.j2",
            u={
                "environment": self.s.name,
                "policy": b.name if b else "none (default schedule)",
                "schedule": b.schedule if b else "hourly",
                "randomized_delay": systemd_timespan(b.randomized_delay_s)
                if b and b.randomized_delay_s
                else "0",
            },
        )
        self.files.append(DesiredFile(timer_path, timer, 0o644, "unit", "services"))
        self.units.append(UnitSpec("atlas-services.timer", timer_path, "services", True, True))

    def _monitoring(self, d: model.Deployment) -> None:
        s = self.s
        config = self.base_config("monitoring", d)
        monitoring_db = self.layout.data_dir / "monitoring.db"
        config["database"] = {"path": str(monitoring_db), "busyTimeoutSeconds": s.busy_timeout_s}
        config.update(
            listen=s.monitoring_listen,
            port=s.monitoring_port,
            intervalSeconds=s.monitoring_interval_s,
            externalURL=s.external_url or f"http://{_probe_host(s.api_listen)}:{s.api_port}",
            scope=self.layout.scope,
            maintenanceFile=str(self.layout.data_dir / "maintenance.json"),
            platformDatabase=str(self.database),
            components=self._monitored_components(),
        )
        reload_part = {
            "rules": [_rule_config(r) for r in self.d.rules],
            "channels": [_channel_config(c) for c in self.d.channels],
        }
        config.update(reload_part)
        secrets = [name for c in self.d.channels for name in c.secret_fields.values()]
        env = self.env_file("monitoring", "atlas-monitoring", secrets)
        after = [u.name for u in self.units if u.start and u.component in ("core", "api")]
        self.add_service(
            "monitoring",
            d,
            config,
            env,
            ["monitor", "--config", str(self.config_path("monitoring"))],
            [s.monitoring_port],
            _probe_host(s.monitoring_listen),
            reload_part,
            after,
        )

    def _units_of(self, component: str) -> list[str]:
        return [u.name for u in self.units if u.component == component and u.start]

    def _monitored_components(self) -> list[dict[str, Any]]:
        """One entry per scrape target: API replicas share a port, core replicas do not."""
        s = self.s
        out: list[dict[str, Any]] = []
        api, core = self.d.deployment("api"), self.d.deployment("core")
        if core is not None:
            host = _probe_host(s.core_metrics_listen)
            for i, name in enumerate(unit_names("core", core.replicas)):
                base = f"http://{host}:{s.core_metrics_port + i}"
                out.append(
                    {
                        "name": "core" if core.replicas == 1 else f"core-{i + 1}",
                        "component": "core",
                        "units": [name],
                        "job": None,
                        "healthURL": base + "/healthz",
                        "metricsURL": base + "/metrics",
                        "timeoutSeconds": min(core.health.timeout_s, 5.0),
                    }
                )
        if api is not None:
            base = f"http://{_probe_host(s.api_listen)}:{s.api_port}"
            out.append(
                {
                    "name": "api",
                    "component": "api",
                    "units": unit_names("api", api.replicas),
                    "job": None,
                    "healthURL": base + "/readyz",
                    "metricsURL": base + "/metrics",
                    "timeoutSeconds": min(api.health.timeout_s, 5.0),
                }
            )
        if self.d.deployment("services") is not None:
            out.append(
                {
                    "name": "services",
                    "component": "services",
                    "units": ["atlas-services.timer"],
                    "job": "atlas-services.service",
                    "healthURL": None,
                    "metricsURL": None,
                    "timeoutSeconds": 5.0,
                }
            )
        return out

    def _reconciler(self, inv: model.ReconcilerInvocation) -> None:
        s = self.s
        secrets = [s.webhook_secret] if s.webhook_secret else []
        env = self.env_file("reconciler", "atlas-reconciler", secrets)
        args = [
            self.ctx.facts.python,
            "-m",
            "atlas",
            "reconcile",
            "--watch",
            "--repo",
            inv.repo,
            "--ref",
            inv.ref,
            "--path",
            inv.path,
            "--env",
            s.name,
            "--scope",
            self.layout.scope,
            "--metrics-addr",
            f"{s.reconciler_metrics_listen}:{s.reconciler_metrics_port}",
            "--interval",
            f"{int(s.reconciler_interval_s)}s",
        ]
        if s.webhook_secret:
            args += ["--webhook-secret-env", secret_variable(s.webhook_secret)]
        if not s.self_heal:
            args.append("--no-self-heal")
        exec_start = " ".join(_exec_quote(a) for a in args)
        env_digest = _hash(*(f"{k}={v}" for k, v in sorted(env.secret_digests.items())))
        path = self.layout.unit_dir / "atlas-reconciler.service"
        content = _template(
            "atlas-reconciler.service.j2",
            u={
                "environment": s.name,
                "exec_start": exec_start,
                "env_file": str(env.path),
                "restart_trigger": _hash(exec_start, env_digest),
                "after": ["network-online.target"] if self.layout.scope == "system" else [],
                "bind_read_only": list(self.ctx.facts.bind_read_only),
                "read_write": [
                    str(self.layout.unit_dir),
                    str(self.layout.config_dir),
                    str(self.layout.state_dir),
                ],
                "wanted_by": self._wanted_by(),
            },
        )
        self.files += [env, DesiredFile(path, content, 0o644, "unit", "reconciler")]
        probe = Probe(
            f"http://{_probe_host(s.reconciler_metrics_listen)}:{s.reconciler_metrics_port}/healthz",
            1.0,
            30.0,
            3,
        )
        self.units.append(
            UnitSpec("atlas-reconciler.service", path, "reconciler", True, True, probe)
        )


def _source_config(src: model.Source) -> dict[str, Any]:
    return {
        "name": src.name,
        "type": src.type,
        "title": src.title,
        "enabled": src.enabled,
        "intervalSeconds": src.interval_s,
        "url": src.url,
        "path": src.path,
        "text": src.text,
        "timeoutSeconds": src.timeout_s,
        "maxBodyBytes": src.max_body_bytes,
        "rateLimit": None
        if src.rate_limit is None
        else {
            "requestsPerMinute": src.rate_limit.requests_per_minute,
            "burst": src.rate_limit.burst,
        },
        "labels": dict(src.labels),
    }


def _rule_config(r: model.Rule) -> dict[str, Any]:
    return {
        "name": r.name,
        "metric": r.metric,
        "matchers": [{"label": m.label, "op": m.op, "value": m.value} for m in r.matchers],
        "op": r.op,
        "threshold": r.threshold,
        "forSeconds": r.for_s,
        "keepFiringForSeconds": r.keep_firing_for_s,
        "repeatIntervalSeconds": r.repeat_interval_s,
        "severity": r.severity,
        "channels": list(r.channels),
        "labels": dict(r.labels),
        "annotations": dict(r.annotations),
    }


def _channel_config(c: model.Channel) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in c.settings.items():
        settings["timeoutSeconds" if key == "timeout" else key] = value
    for field_name, secret in c.secret_fields.items():
        settings[f"{field_name}Env"] = secret_variable(secret)
    return {
        "name": c.name,
        "type": c.type,
        "sendResolved": c.send_resolved,
        c.type: settings,
        "templates": dict(c.templates),
    }
