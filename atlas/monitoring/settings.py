"""Typed settings of the monitoring agent, built from the rendered ``monitoring.json``.

``load_settings`` validates the file against ``schemas/config/monitoring.json``
(:func:`atlas.config.load_config`) and then checks what a schema cannot: unique rule
and channel names, rules naming existing channels, valid regular expressions and
Jinja2 templates. Any problem is a ``ConfigError`` naming the file and the field.

Rules and channels form ``Alerting``, the part re-read on SIGHUP. Channel secrets
are never in the file: ``password_env``/``url_env`` name environment variables.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from atlas.config import load_config, validate_config
from atlas.errors import ConfigError
from atlas.monitoring.samples import Matcher, Selector

Severity = Literal["critical", "warning", "info"]
CompareOp = Literal[">", ">=", "<", "<=", "==", "!="]
ChannelType = Literal["email", "webhook", "slack"]
EmailSecurity = Literal["starttls", "tls", "none"]
DEFAULT_CHANNEL_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Rule:
    name: str
    selector: Selector
    op: CompareOp
    threshold: float
    for_s: float
    keep_firing_for_s: float
    repeat_interval_s: float  # 0: never repeat
    severity: Severity
    channels: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def holds(self, value: float) -> bool:
        """True when ``value op threshold``; NaN never holds."""
        t = self.threshold
        if math.isnan(value):
            return False
        return {
            ">": value > t,
            ">=": value >= t,
            "<": value < t,
            "<=": value <= t,
            "==": value == t,
            "!=": value != t,
        }[self.op]

    @property
    def expression(self) -> str:
        return f"{self.selector} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class EmailSettings:
    host: str
    sender: str
    to: tuple[str, ...]
    port: int = 587
    security: EmailSecurity = "starttls"
    username: str | None = None
    password_env: str | None = None
    timeout_s: float = DEFAULT_CHANNEL_TIMEOUT_S


@dataclass(frozen=True)
class WebhookSettings:
    url: str | None = None
    url_env: str | None = None
    timeout_s: float = DEFAULT_CHANNEL_TIMEOUT_S
    max_alerts: int = 0  # 0: all


@dataclass(frozen=True)
class SlackSettings:
    url_env: str
    channel: str | None = None
    username: str | None = None
    timeout_s: float = DEFAULT_CHANNEL_TIMEOUT_S


ChannelSpecific = EmailSettings | WebhookSettings | SlackSettings


@dataclass(frozen=True)
class ChannelSettings:
    name: str
    type: ChannelType
    send_resolved: bool
    settings: ChannelSpecific
    templates: dict[str, str] = field(default_factory=dict)

    @property
    def secret_envs(self) -> tuple[str, ...]:
        """Names of the environment variables holding this channel's secrets."""
        s = self.settings
        if isinstance(s, EmailSettings):
            return (s.password_env,) if s.password_env else ()
        return (s.url_env,) if s.url_env else ()


@dataclass(frozen=True)
class Alerting:
    """The part of the config that SIGHUP re-reads."""

    rules: tuple[Rule, ...]
    channels: tuple[ChannelSettings, ...]

    def channel(self, name: str) -> ChannelSettings | None:
        return next((c for c in self.channels if c.name == name), None)


@dataclass(frozen=True)
class Component:
    name: str
    component: str
    units: tuple[str, ...]
    job: str | None
    health_url: str | None
    metrics_url: str | None
    timeout_s: float


@dataclass(frozen=True)
class Settings:
    environment: str
    version: str | None
    log_level: str
    data_dir: Path
    database_path: Path
    busy_timeout_s: float
    listen: str
    port: int
    interval_s: float
    external_url: str
    scope: Literal["system", "user"]
    maintenance_file: Path
    components: tuple[Component, ...]
    alerting: Alerting
    source: str = "<config>"


def load_settings(path: Path, root: Path | None = None) -> Settings:
    """Read, validate and type ``path``. ``root`` prefixes the host paths inside it."""
    return settings_from_dict(load_config(path, "monitoring"), str(path), root)


def settings_from_dict(data: Any, source: str = "<config>", root: Path | None = None) -> Settings:
    """Validate a config dict (as rendered) and build typed settings."""
    data = validate_config(data, "monitoring", source)

    def host_path(p: str) -> Path:
        return root / p.lstrip("/") if root is not None and str(root) != "/" else Path(p)

    components = tuple(_component(c) for c in data["components"])
    seen: set[str] = set()
    for i, c in enumerate(components):
        if c.name in seen:
            raise ConfigError(f"{source}: components[{i}].name: duplicate component {c.name!r}")
        seen.add(c.name)
    return Settings(
        environment=data["environment"],
        version=data["version"],
        log_level=data["logLevel"],
        data_dir=host_path(data["dataDir"]),
        database_path=host_path(data["database"]["path"]),
        busy_timeout_s=float(data["database"]["busyTimeoutSeconds"]),
        listen=data["listen"],
        port=int(data["port"]),
        interval_s=float(data["intervalSeconds"]),
        external_url=data["externalURL"].rstrip("/"),
        scope=data["scope"],
        maintenance_file=host_path(data["maintenanceFile"]),
        components=components,
        alerting=alerting_from_dict(data, source),
        source=source,
    )


def alerting_from_dict(data: dict[str, Any], source: str) -> Alerting:
    """Rules and channels of a validated config, with the cross-checks a schema cannot do."""
    from atlas.alerting.templates import check_annotation, check_channel_templates

    channels: list[ChannelSettings] = []
    for i, raw in enumerate(data["channels"]):
        where = f"{source}: channels[{i}]"
        ch = _channel(raw, where)
        if any(c.name == ch.name for c in channels):
            raise ConfigError(f"{where}.name: duplicate channel {ch.name!r}")
        check_channel_templates(ch, where)
        channels.append(ch)
    names = {c.name for c in channels}
    rules: list[Rule] = []
    for i, raw in enumerate(data["rules"]):
        where = f"{source}: rules[{i}] ({raw['name']})"
        rule = _rule(raw, where)
        if any(r.name == rule.name for r in rules):
            raise ConfigError(f"{where}.name: duplicate rule {rule.name!r}")
        for ch_name in rule.channels:
            if ch_name not in names:
                raise ConfigError(
                    f"{where}.channels: no channel named {ch_name!r} "
                    f"(channels: {', '.join(sorted(names)) or 'none'})"
                )
        for key, text in rule.annotations.items():
            check_annotation(text, f"{where}.annotations.{key}")
        rules.append(rule)
    return Alerting(tuple(rules), tuple(channels))


def _component(c: dict[str, Any]) -> Component:
    return Component(
        name=c["name"],
        component=c["component"],
        units=tuple(c["units"]),
        job=c["job"],
        health_url=c["healthURL"],
        metrics_url=c["metricsURL"],
        timeout_s=float(c["timeoutSeconds"]),
    )


def _rule(r: dict[str, Any], where: str) -> Rule:
    matchers = []
    for j, m in enumerate(r["matchers"]):
        try:
            matchers.append(Matcher.make(m["label"], m["op"], m["value"]))
        except re.error as exc:
            raise ConfigError(
                f"{where}.matchers[{j}]: {m['value']!r} is not a valid regular expression: {exc}"
            ) from exc
    return Rule(
        name=r["name"],
        selector=Selector(r["metric"], tuple(matchers)),
        op=r["op"],
        threshold=float(r["threshold"]),
        for_s=float(r["forSeconds"]),
        keep_firing_for_s=float(r["keepFiringForSeconds"]),
        repeat_interval_s=float(r["repeatIntervalSeconds"]),
        severity=r["severity"],
        channels=tuple(r["channels"]),
        labels=dict(r["labels"]),
        annotations=dict(r["annotations"]),
    )


def _channel(c: dict[str, Any], where: str) -> ChannelSettings:
    kind: ChannelType = c["type"]
    block = c.get(kind)
    if block is None:
        raise ConfigError(f"{where}: a {kind} channel needs a {kind!r} block")
    others = [k for k in ("email", "webhook", "slack") if k != kind and k in c]
    if others:
        raise ConfigError(f"{where}: a {kind} channel cannot have a {others[0]!r} block")
    timeout = float(block.get("timeoutSeconds", DEFAULT_CHANNEL_TIMEOUT_S))
    specific: ChannelSpecific
    if kind == "email":
        specific = EmailSettings(
            host=block["host"],
            sender=block["from"],
            to=tuple(block["to"]),
            port=int(block.get("port", 587)),
            security=block.get("security", "starttls"),
            username=block.get("username"),
            password_env=block.get("passwordEnv"),
            timeout_s=timeout,
        )
        if not specific.to:
            raise ConfigError(f"{where}.email.to: at least one recipient is needed")
    elif kind == "webhook":
        if bool(block.get("url")) == bool(block.get("urlEnv")):
            raise ConfigError(f"{where}.webhook: exactly one of url and urlEnv is needed")
        specific = WebhookSettings(
            url=block.get("url"),
            url_env=block.get("urlEnv"),
            timeout_s=timeout,
            max_alerts=int(block.get("maxAlerts", 0)),
        )
    else:
        specific = SlackSettings(
            url_env=block["urlEnv"],
            channel=block.get("channel"),
            username=block.get("username"),
            timeout_s=timeout,
        )
    unknown = set(c["templates"]) - {"subject", "text", "html"}
    if unknown:
        raise ConfigError(
            f"{where}.templates: unknown template {sorted(unknown)[0]!r} "
            "(expected subject, text or html)"
        )
    return ChannelSettings(c["name"], kind, bool(c["sendResolved"]), specific, dict(c["templates"]))
