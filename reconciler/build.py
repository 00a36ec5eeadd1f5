"""Build the desired state of an environment from its validated manifests.

Applies the defaults the schemas document, converts durations and sizes, reads the
files that ``file`` Sources bundle, parses alert selectors, and decrypts the secrets
that something refers to (only those). Reading bundled files and the key file are
its only I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from reconciler import model
from reconciler.errors import ManifestError, SecretsError
from reconciler.manifests.validate import EnvManifests, Manifest, parse_selector
from reconciler.quantities import parse_duration, parse_size
from reconciler.secrets.keys import KeyRing, SecretValue, sealed


class SecretsSource(Protocol):
    """Turns an encrypted token of the environment's Secrets document into a value."""

    def open(self, env: str, name: str, token: str) -> SecretValue: ...


class KeyRingSecrets:
    def __init__(self, keyring: KeyRing) -> None:
        self.keyring = keyring

    def open(self, env: str, name: str, token: str) -> SecretValue:
        return self.keyring.decrypt(env, name, token)


class KeyFileSecrets:
    """Reads the key file when the first secret is needed, so its errors name that secret."""

    def __init__(self, load: Callable[[], KeyRing]) -> None:
        self._load = load
        self._keyring: KeyRing | None = None

    def open(self, env: str, name: str, token: str) -> SecretValue:
        if self._keyring is None:
            try:
                self._keyring = self._load()
            except SecretsError as exc:
                raise SecretsError(
                    f"environment {env!r}: cannot decrypt secret {name!r}: {exc}"
                ) from exc
        return self._keyring.decrypt(env, name, token)


class SealedSecrets:
    """No key here (a pull-request plan): values stay encrypted; digests cover the tokens."""

    def open(self, env: str, name: str, token: str) -> SecretValue:
        return sealed(name, token)


def referenced_secrets(manifests: EnvManifests) -> dict[str, str]:
    """Secret name → the Kind/name that first refers to it."""
    refs: dict[str, str] = {}
    for m in manifests.manifests:
        spec = m.spec
        if m.kind == "AlertChannel":
            for block in ("email", "webhook", "slack"):
                for key, value in spec.get(block, {}).items():
                    if key.endswith("Secret"):
                        refs.setdefault(value, m.ref)
        elif m.kind == "BackupPolicy" and spec.get("encrypt"):
            refs.setdefault(spec["encryptionKeySecret"], m.ref)
        elif m.kind == "Environment":
            hook = spec.get("reconciler", {}).get("webhookSecret")
            if hook:
                refs.setdefault(hook, m.ref)
    return refs


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
    refs = referenced_secrets(manifests)
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


def _seconds(value: Any, default: str) -> float:
    return parse_duration(value if value is not None else default)


def _settings(m: Manifest) -> model.Settings:
    s = m.spec
    db, api, core = s.get("database", {}), s.get("api", {}), s.get("core", {})
    mon, rec = s.get("monitoring", {}), s.get("reconciler", {})
    d = model.Settings(name=m.name)
    return model.Settings(
        name=m.name,
        log_level=s.get("logLevel", d.log_level),
        secrets_name=s.get("secrets"),
        database_path=db.get("path", d.database_path),
        busy_timeout_s=_seconds(db.get("busyTimeout"), "5s"),
        api_listen=api.get("listen", d.api_listen),
        api_port=api.get("port", d.api_port),
        page_size=api.get("pageSize", d.page_size),
        core_metrics_listen=core.get("metricsListen", d.core_metrics_listen),
        core_metrics_port=core.get("metricsPort", d.core_metrics_port),
        core_concurrency=core.get("concurrency", d.core_concurrency),
        user_agent=core.get("userAgent"),
        fetch_timeout_s=_seconds(core.get("timeout"), "10s"),
        max_body_bytes=parse_size(core.get("maxBodySize", "10M")),
        max_redirects=core.get("maxRedirects", d.max_redirects),
        monitoring_listen=mon.get("metricsListen", d.monitoring_listen),
        monitoring_port=mon.get("metricsPort", d.monitoring_port),
        monitoring_interval_s=_seconds(mon.get("interval"), "10s"),
        external_url=mon.get("externalURL"),
        reconciler_enabled=rec.get("enabled", d.reconciler_enabled),
        reconciler_interval_s=_seconds(rec.get("interval"), "1m"),
        self_heal=rec.get("selfHeal", d.self_heal),
        reconciler_metrics_listen=rec.get("metricsListen", d.reconciler_metrics_listen),
        reconciler_metrics_port=rec.get("metricsPort", d.reconciler_metrics_port),
        webhook_secret=rec.get("webhookSecret"),
    )


def _source(m: Manifest, repo_root: Path) -> model.Source:
    s = m.spec
    rate = s.get("rateLimit")
    text = s.get("text")
    if s["type"] == "file":
        text = (repo_root / s["path"]).read_text(encoding="utf-8", errors="replace")
    labels = m.data.get("metadata", {}).get("labels", {})
    return model.Source(
        name=m.name,
        type=s["type"],
        interval_s=_seconds(s.get("interval"), "15m"),
        enabled=s.get("enabled", True),
        title=s.get("title"),
        url=s.get("url"),
        path=s.get("path"),
        text=text,
        timeout_s=parse_duration(s["timeout"]) if "timeout" in s else None,
        max_body_bytes=parse_size(s["maxBodySize"]) if "maxBodySize" in s else None,
        rate_limit=model.RateLimit(rate["requestsPerMinute"], rate.get("burst", 1))
        if rate
        else None,
        labels=dict(labels),
    )


# The defaults the AlertChannel schema documents, applied once, here: the agent reads
# complete settings and keeps no copy of them.
CHANNEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "email": {"port": 587, "security": "starttls", "timeout": "10s"},
    "webhook": {"timeout": "10s", "maxAlerts": 0},
    "slack": {"timeout": "10s"},
}


def _channel(m: Manifest) -> model.Channel:
    s = m.spec
    block = {**CHANNEL_DEFAULTS[s["type"]], **s.get(s["type"], {})}
    secret_fields = {
        key[: -len("Secret")]: block.pop(key) for key in list(block) if key.endswith("Secret")
    }
    for key in ("timeout",):
        if key in block:
            block[key] = parse_duration(block[key])
    return model.Channel(
        name=m.name,
        type=s["type"],
        send_resolved=s.get("sendResolved", True),
        settings=block,
        secret_fields=secret_fields,
        templates=dict(s.get("templates", {})),
    )


def _rule(m: Manifest) -> model.Rule:
    s = m.spec
    name, matchers = parse_selector(s["metric"])
    return model.Rule(
        name=m.name,
        metric=name,
        matchers=tuple(model.Matcher(*t) for t in matchers),
        op=s["op"],
        threshold=float(s["threshold"]),
        for_s=_seconds(s.get("for"), "0s"),
        keep_firing_for_s=_seconds(s.get("keepFiringFor"), "0s"),
        repeat_interval_s=_seconds(s.get("repeatInterval"), "4h"),
        severity=s.get("severity", "warning"),
        channels=tuple(s["channels"]),
        labels=dict(s.get("labels", {})),
        annotations=dict(s.get("annotations", {})),
    )


def _deployment(m: Manifest) -> model.Deployment:
    s = m.spec
    st, res, rs, hc = (s.get(k, {}) for k in ("strategy", "resources", "restart", "healthCheck"))
    http = hc.get("http")
    return model.Deployment(
        name=m.name,
        component=s["component"],
        version=s["version"],
        replicas=s.get("replicas", 1),
        strategy=model.Strategy(
            type=st.get("type", "recreate"),
            max_unavailable=st.get("maxUnavailable", 1),
            scale_down_delay_s=_seconds(st.get("scaleDownDelay"), "0s"),
            steps=tuple(
                model.CanaryStep(step["replicas"], _seconds(step.get("pause"), "0s"))
                for step in st.get("steps", [])
            ),
        ),
        resources=model.Resources(
            memory_max=parse_size(res["memoryMax"]) if "memoryMax" in res else None,
            cpu_quota=res.get("cpuQuota"),
            nofile=res.get("nofile"),
        ),
        restart=model.RestartPolicy(
            policy=rs.get("policy", "on-failure"),
            delay_s=_seconds(rs.get("delay"), "2s"),
            burst=rs.get("burst", 5),
            interval_s=_seconds(rs.get("interval"), "1m"),
        ),
        health=model.HealthCheck(
            path=http.get("path", "/readyz") if http is not None else None,
            port=http.get("port") if http is not None else None,
            interval_s=_seconds(hc.get("interval"), "1s"),
            timeout_s=_seconds(hc.get("timeout"), "30s"),
            failure_threshold=hc.get("failureThreshold", 3),
        ),
    )


def _backup(m: Manifest) -> model.BackupPolicy:
    s = m.spec
    retention = s.get("retention", {})
    return model.BackupPolicy(
        name=m.name,
        schedule=s["schedule"],
        randomized_delay_s=_seconds(s.get("randomizedDelay"), "0s"),
        destination=s.get("destination", "backups"),
        keep_last=retention.get("keepLast", 7),
        max_age_s=parse_duration(retention["maxAge"]) if "maxAge" in retention else None,
        encrypt=s.get("encrypt", False),
        encryption_key_secret=s.get("encryptionKeySecret"),
        verify=s.get("verify", True),
    )
