"""The JSON config of each component (``<config>/<component>.json``; contract:
``schemas/config/``). Non-secret only: secrets go to env files, and configs name the
variables that hold them (``…Env``)."""

from __future__ import annotations

from typing import Any

from reconciler import model
from reconciler.render.desired import unit_names
from reconciler.render.inputs import Inputs
from reconciler.render.text import probe_host, secret_variable

CONFIG_VERSION = 1
Config = dict[str, Any]


def base(i: Inputs, component: str, deployment: model.Deployment | None) -> Config:
    s = i.settings
    return {
        "configVersion": CONFIG_VERSION,
        "component": component,
        "environment": s.name,
        "version": deployment.version if deployment else None,
        "logLevel": s.log_level,
        "dataDir": str(i.layout.data_dir),
        "database": {"path": str(i.database), "busyTimeoutSeconds": s.busy_timeout_s},
    }


def core(i: Inputs, d: model.Deployment) -> Config:
    s = i.settings
    config = base(i, "core", d)
    config.update(
        metrics={"listen": s.core_metrics_listen, "port": s.core_metrics_port},
        replicas=d.replicas,
        fetch={
            "userAgent": s.user_agent or f"Atlas/{d.version} (+https://atlas.invalid/bot)",
            "timeoutSeconds": s.fetch_timeout_s,
            "maxBodyBytes": s.max_body_bytes,
            "maxRedirects": s.max_redirects,
            "concurrency": s.core_concurrency,
            "allowPrivateNetworks": list(s.allow_private_networks),
        },
        sources=[source(src) for src in i.desired.sources],
    )
    return config


def api(i: Inputs, d: model.Deployment) -> Config:
    s = i.settings
    config = base(i, "api", d)
    config.update(
        listen=s.api_listen,
        port=s.api_port,
        pageSize=s.page_size,
        replicas=d.replicas,
        maintenanceFile=str(i.maintenance_file),
        auth={
            "tokens": [
                {"name": t.name, "scopes": list(t.scopes), "env": secret_variable(t.secret)}
                for t in s.api_tokens
            ],
            "protectMetrics": s.api_protect_metrics,
        },
        tls=_api_tls(s.api_tls),
    )
    if d.strategy.blue_green is not None:  # blueGreen runs replicas 1..2N side by side
        config["previewPort"] = d.strategy.blue_green.preview_port
    return config


def _api_tls(tls: model.ApiTls | None) -> Config | None:
    """Where the API finds its certificate and key: env variables (from secrets) or files."""
    if tls is None:
        return None
    if tls.cert_secret and tls.key_secret:
        return {
            "certEnv": secret_variable(tls.cert_secret),
            "keyEnv": secret_variable(tls.key_secret),
        }
    return {"certFile": tls.cert_file, "keyFile": tls.key_file}


def services(i: Inputs, d: model.Deployment) -> Config:
    b = i.desired.backup
    config = base(i, "services", d)
    config["backup"] = (
        None
        if b is None
        else {
            "policy": b.name,
            "destination": str(i.layout.data_dir / b.destination),
            "keepLast": b.keep_last,
            "maxAgeSeconds": b.max_age_s,
            "encrypt": b.encrypt,
            "encryptionKeyEnv": secret_variable(b.encryption_key_secret)
            if b.encrypt and b.encryption_key_secret
            else None,
            "verify": b.verify,
            "fullEverySeconds": b.full_every_s,
            "drillEverySeconds": b.drill_every_s,
        }
    )
    return config


def monitoring(i: Inputs, d: model.Deployment) -> Config:
    s = i.settings
    config = base(i, "monitoring", d)
    monitoring_db = i.layout.data_dir / "monitoring.db"
    config["database"] = {"path": str(monitoring_db), "busyTimeoutSeconds": s.busy_timeout_s}
    config.update(
        listen=s.monitoring_listen,
        port=s.monitoring_port,
        intervalSeconds=s.monitoring_interval_s,
        externalURL=s.external_url or f"http://{probe_host(s.api_listen)}:{s.api_port}",
        scope=i.layout.scope,
        maintenanceFile=str(i.maintenance_file),
        platformDatabase=str(i.database),
        components=monitored_components(i),
    )
    config.update(monitoring_reloadable(i))
    return config


def monitoring_reloadable(i: Inputs) -> Config:
    """The part of the agent's config it re-reads on SIGHUP: rules and channels."""
    return {
        "rules": [rule(r) for r in i.desired.rules],
        "channels": [channel(c) for c in i.desired.channels],
    }


def monitored_components(i: Inputs) -> list[Config]:
    """One entry per scrape target: API replicas share a port, core replicas do not."""
    s = i.settings
    out: list[Config] = []
    api_d, core_d = i.desired.deployment("api"), i.desired.deployment("core")
    if core_d is not None:
        host = probe_host(s.core_metrics_listen)
        for n, name in enumerate(unit_names("core", core_d.replicas)):
            url = f"http://{host}:{s.core_metrics_port + n}"
            out.append(
                _target(
                    "core" if core_d.replicas == 1 else f"core-{n + 1}",
                    "core",
                    [name],
                    url + "/healthz",
                    url + "/metrics",
                    min(core_d.health.timeout_s, 5.0),
                )
            )
    if api_d is not None:
        url = f"http://{probe_host(s.api_listen)}:{s.api_port}"
        out.append(
            _target(
                "api",
                "api",
                unit_names("api", api_d.replicas, api_d.strategy.blue_green is not None),
                url + "/readyz",
                url + "/metrics",
                min(api_d.health.timeout_s, 5.0),
            )
        )
    if i.desired.deployment("services") is not None:
        target = _target("services", "services", ["atlas-services.timer"], None, None, 5.0)
        target["job"] = "atlas-services.service"
        out.append(target)
    return out


def _target(
    name: str,
    component: str,
    units: list[str],
    health: str | None,
    metrics: str | None,
    timeout_s: float,
) -> Config:
    return {
        "name": name,
        "component": component,
        "units": units,
        "job": None,
        "healthURL": health,
        "metricsURL": metrics,
        "timeoutSeconds": timeout_s,
    }


def source(src: model.Source) -> Config:
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
        "allowPrivate": src.allow_private,
        "urlEnv": secret_variable(src.url_secret) if src.url_secret else None,
        "basicAuth": None
        if src.basic_auth is None
        else {
            "usernameEnv": secret_variable(src.basic_auth[0]),
            "passwordEnv": secret_variable(src.basic_auth[1]),
        },
    }


def rule(r: model.Rule) -> Config:
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


RENAMED = {"timeout": "timeoutSeconds", "maxFileSize": "maxFileBytes"}  # parsed by build


def channel(c: model.Channel) -> Config:
    settings: Config = {}
    for key, value in c.settings.items():
        settings[RENAMED.get(key, key)] = value
    for field_name, secret in c.secret_fields.items():
        settings[f"{field_name}Env"] = secret_variable(secret)
    return {
        "name": c.name,
        "type": c.type,
        "sendResolved": c.send_resolved,
        c.type: settings,
        "templates": dict(c.templates),
    }
