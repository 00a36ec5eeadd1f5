"""Build the desired state of an environment from its validated manifests.

Applies the defaults the schemas document (read from the schemas themselves through
``manifests.schema.Values``: no default is written twice), converts durations and
sizes, reads the files that ``file`` Sources bundle, parses alert selectors, and
decrypts the secrets that something refers to (only those). Reading bundled files
and the key file are its only I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from reconciler import model
from reconciler.errors import ManifestError, SecretsError
from reconciler.manifests.assemble import EnvManifests
from reconciler.manifests.overlay import Manifest
from reconciler.manifests.references import referenced_secrets
from reconciler.manifests.schema import Values
from reconciler.manifests.selectors import parse_selector
from reconciler.quantities import parse_duration, parse_size
from reconciler.secrets.keys import SecretValue
from reconciler.secrets.sources import SecretsSource


def build(
    manifests: EnvManifests,
    revision: model.Revision,
    repo_root: Path,
    secrets: SecretsSource | None,
) -> model.DesiredState:
    """The desired state; ManifestError if ``manifests`` has problems, SecretsError for keys."""
    if manifests.problems:
        raise ManifestError(list(manifests.problems))
    env = manifests.environment
    environment = manifests.get("Environment", env)
    assert environment is not None  # validation guarantees it
    settings = _settings(environment)
    return model.DesiredState(
        settings=settings,
        revision=revision,
        sources=tuple(_source(m, repo_root) for m in manifests.of_kind("Source")),
        channels=tuple(_channel(m) for m in manifests.of_kind("AlertChannel")),
        rules=tuple(_rule(m) for m in manifests.of_kind("AlertRule")),
        deployments=tuple(_deployment(m) for m in manifests.of_kind("Deployment")),
        backup=next((_backup(m) for m in manifests.of_kind("BackupPolicy")), None),
        secrets=_secrets(manifests, settings, secrets),
    )


def _secrets(
    manifests: EnvManifests, settings: model.Settings, source: SecretsSource | None
) -> Mapping[str, SecretValue]:
    refs = referenced_secrets(manifests.manifests)
    if not refs:
        return {}
    env = manifests.environment
    doc = manifests.get("Secrets", settings.secrets_name or "")
    tokens: dict[str, Any] = doc.spec.get("data", {}) if doc else {}
    if source is None:
        names = ", ".join(sorted(refs))
        raise SecretsError(
            f"environment {env!r} needs its secrets key to decrypt {names}: pass --key-file, "
            "set ATLAS_SECRETS_KEY_FILE, or create the default key file (atlas secrets keygen)"
        )
    values = {}
    for name in sorted(refs):
        try:
            values[name] = source.open(env, name, tokens[name])
        except SecretsError as exc:
            if doc is None:
                raise
            file, line = doc.mark(("spec", "data", name))
            raise SecretsError(f"{file}:{line}: {doc.ref}: {exc}") from exc
    return values


def _seconds(v: Values, dotted: str) -> float:
    return parse_duration(v(dotted))


def _settings(m: Manifest) -> model.Settings:
    v = Values("Environment", m.spec)
    return model.Settings(
        name=m.name,
        log_level=v("logLevel"),
        secrets_name=v.get("secrets"),
        database_path=v("database.path"),
        busy_timeout_s=_seconds(v, "database.busyTimeout"),
        api_listen=v("api.listen"),
        api_port=v("api.port"),
        page_size=v("api.pageSize"),
        core_metrics_listen=v("core.metricsListen"),
        core_metrics_port=v("core.metricsPort"),
        core_concurrency=v("core.concurrency"),
        user_agent=v.get("core.userAgent"),
        fetch_timeout_s=_seconds(v, "core.timeout"),
        max_body_bytes=parse_size(v("core.maxBodySize")),
        max_redirects=v("core.maxRedirects"),
        monitoring_listen=v("monitoring.metricsListen"),
        monitoring_port=v("monitoring.metricsPort"),
        monitoring_interval_s=_seconds(v, "monitoring.interval"),
        external_url=v.get("monitoring.externalURL"),
        reconciler_enabled=v("reconciler.enabled"),
        reconciler_interval_s=_seconds(v, "reconciler.interval"),
        self_heal=v("reconciler.selfHeal"),
        reconciler_metrics_listen=v("reconciler.metricsListen"),
        reconciler_metrics_port=v("reconciler.metricsPort"),
        webhook_secret=v.get("reconciler.webhookSecret"),
        releases=_releases(v),
        allow_private_networks=tuple(v("sources.allowPrivateNetworks")),
        api_tokens=_api_tokens(v),
        api_protect_metrics=v("api.auth.protectMetrics"),
        api_tls=_api_tls(v),
    )


def _api_tokens(v: Values) -> tuple[model.ApiToken, ...]:
    tokens = []
    for data in v("api.auth.tokens"):
        t = v.item("api.auth.tokens", data)
        tokens.append(model.ApiToken(t("name"), t("secret"), tuple(t("scopes"))))
    return tuple(tokens)


def _api_tls(v: Values) -> model.ApiTls | None:
    if not v.has("api.tls"):
        return None
    t = v.block("api.tls")
    return model.ApiTls(
        t.get("certSecret"), t.get("keySecret"), t.get("certFile"), t.get("keyFile")
    )


def _releases(v: Values) -> model.Releases | None:
    if not v.has("releases"):
        return None
    r = v.block("releases")
    return model.Releases(source=r("source"), keep=r("keep"))


def _source(m: Manifest, repo_root: Path) -> model.Source:
    v = Values("Source", m.spec)
    rate = v.block("rateLimit") if v.has("rateLimit") else None
    text = v.get("text")
    if v("type") == "file":
        text = (repo_root / v("path")).read_text(encoding="utf-8", errors="replace")
    labels = m.data.get("metadata", {}).get("labels", {})
    return model.Source(
        name=m.name,
        type=v("type"),
        interval_s=_seconds(v, "interval"),
        enabled=v("enabled"),
        title=v.get("title"),
        url=v.get("url"),
        path=v.get("path"),
        text=text,
        timeout_s=parse_duration(v("timeout")) if v.has("timeout") else None,
        max_body_bytes=parse_size(v("maxBodySize")) if v.has("maxBodySize") else None,
        rate_limit=model.RateLimit(rate("requestsPerMinute"), rate("burst")) if rate else None,
        labels=dict(labels),
        allow_private=v("fetch.allowPrivate"),
        url_secret=v.get("urlSecret"),
        basic_auth=(v("basicAuth.usernameSecret"), v("basicAuth.passwordSecret"))
        if v.has("basicAuth")
        else None,
    )


def _channel(m: Manifest) -> model.Channel:
    """A channel's type block with every default applied, once, here: the agent reads
    complete settings and keeps no copy of them."""
    v = Values("AlertChannel", m.spec)
    kind = v("type")
    block = v.block(kind).with_defaults()
    secret_fields = {
        key[: -len("Secret")]: block.pop(key) for key in list(block) if key.endswith("Secret")
    }
    if "timeout" in block:
        block["timeout"] = parse_duration(block["timeout"])
    if "maxFileSize" in block:
        block["maxFileSize"] = parse_size(block["maxFileSize"])
    return model.Channel(
        name=m.name,
        type=kind,
        send_resolved=v("sendResolved"),
        settings=block,
        secret_fields=secret_fields,
        templates=dict(v.get("templates") or {}),
    )


def _rule(m: Manifest) -> model.Rule:
    v = Values("AlertRule", m.spec)
    name, matchers = parse_selector(v("metric"))
    return model.Rule(
        name=m.name,
        metric=name,
        matchers=tuple(model.Matcher(*t) for t in matchers),
        op=v("op"),
        threshold=float(v("threshold")),
        for_s=_seconds(v, "for"),
        keep_firing_for_s=_seconds(v, "keepFiringFor"),
        repeat_interval_s=_seconds(v, "repeatInterval"),
        severity=v("severity"),
        channels=tuple(v("channels")),
        labels=dict(v.get("labels") or {}),
        annotations=dict(v.get("annotations") or {}),
    )


def _analysis(a: Values) -> model.Analysis:
    return model.Analysis(
        interval_s=_seconds(a, "interval"),
        count=a("count"),
        failure_limit=a("failureLimit"),
        min_requests=a("minRequests"),
        metrics=tuple(
            model.AnalysisMetric(
                m["name"], m.get("max"), m.get("maxOverStable"), m.get("maxRatioToStable")
            )
            for m in a("metrics")
        ),
    )


def _blue_green(st: Values) -> model.BlueGreen | None:
    if not st.has("blueGreen"):
        return None
    bg = st.block("blueGreen")
    return model.BlueGreen(
        auto_promote=bg("autoPromote"),
        scale_down_delay_s=_seconds(bg, "scaleDownDelay"),
        preview_port=bg("previewPort"),
        analysis=_analysis(bg.block("prePromotionAnalysis")),
    )


def _strategy(v: Values) -> model.Strategy:
    st = v.block("strategy")
    return model.Strategy(
        type=st("type"),
        max_unavailable=st("maxUnavailable"),
        steps=tuple(
            model.CanaryStep(step["replicas"], _seconds(st.item("steps", step), "pause"))
            for step in st.get("steps") or []
        ),
        blue_green=_blue_green(st),
    )


def _health(v: Values) -> model.HealthCheck:
    hc = v.block("healthCheck")
    http = hc.block("http") if hc.has("http") else None
    return model.HealthCheck(
        path=http("path") if http is not None else None,
        port=http.get("port") if http is not None else None,
        interval_s=_seconds(hc, "interval"),
        timeout_s=_seconds(hc, "timeout"),
        failure_threshold=hc("failureThreshold"),
    )


def _deployment(m: Manifest) -> model.Deployment:
    v = Values("Deployment", m.spec)
    res, rs = v.block("resources"), v.block("restart")
    return model.Deployment(
        name=m.name,
        component=v("component"),
        version=v("version"),
        replicas=v("replicas"),
        strategy=_strategy(v),
        resources=model.Resources(
            memory_max=parse_size(res("memoryMax")) if res.has("memoryMax") else None,
            cpu_quota=res.get("cpuQuota"),
            nofile=res.get("nofile"),
        ),
        restart=model.RestartPolicy(
            policy=rs("policy"),
            delay_s=_seconds(rs, "delay"),
            burst=rs("burst"),
            interval_s=_seconds(rs, "interval"),
        ),
        health=_health(v),
        sha256=v.get("sha256"),
    )


def _backup(m: Manifest) -> model.BackupPolicy:
    v = Values("BackupPolicy", m.spec)
    retention = v.block("retention")
    return model.BackupPolicy(
        name=m.name,
        schedule=v("schedule"),
        randomized_delay_s=_seconds(v, "randomizedDelay"),
        destination=v("destination"),
        keep_last=retention("keepLast"),
        max_age_s=parse_duration(retention("maxAge")) if retention.has("maxAge") else None,
        encrypt=v("encrypt"),
        encryption_key_secret=v.get("encryptionKeySecret"),
        verify=v("verify"),
        full_every_s=_seconds(v, "fullEvery"),
        drill_every_s=parse_duration(v("drillEvery")) if v.has("drillEvery") else None,
    )
