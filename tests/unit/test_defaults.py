"""Every default is written once, in the schemas, and the build stage reads it there."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reconciler import build as build_stage
from reconciler import model
from reconciler.manifests import schema
from reconciler.manifests.assemble import assemble
from reconciler.manifests.load import load_repository
from reconciler.model import Revision
from reconciler.quantities import parse_duration, parse_size

MINIMAL = """\
apiVersion: atlas/v1
kind: Environment
metadata: {name: dev}
spec: {}
---
apiVersion: atlas/v1
kind: Deployment
metadata: {name: core}
spec: {component: core, version: 1.0.0}
---
apiVersion: atlas/v1
kind: Deployment
metadata: {name: api}
spec: {component: api, version: 1.0.0, healthCheck: {http: {}}}
---
apiVersion: atlas/v1
kind: Source
metadata: {name: notes}
spec: {type: text, text: hello, rateLimit: {requestsPerMinute: 6}}
---
apiVersion: atlas/v1
kind: AlertChannel
metadata: {name: hook}
spec: {type: webhook, webhook: {url: "http://127.0.0.1:9/hook"}}
---
apiVersion: atlas/v1
kind: AlertRule
metadata: {name: down}
spec: {metric: up, op: "<", threshold: 1, channels: [hook]}
---
apiVersion: atlas/v1
kind: BackupPolicy
metadata: {name: nightly}
spec: {schedule: daily}
"""


@pytest.fixture
def desired(tmp_path: Path) -> model.DesiredState:
    (tmp_path / "environments" / "dev").mkdir(parents=True)
    (tmp_path / "environments" / "dev" / "all.yaml").write_text(MINIMAL)
    manifests = assemble(load_repository(tmp_path), "dev")
    assert manifests.ok, manifests.problems
    return build_stage.build(manifests, Revision("x"), tmp_path, None)


def default(kind: str, path: str) -> object:
    return schema.default_of(kind, path)


def test_a_manifest_with_only_required_fields_gets_the_schemas_defaults(
    desired: model.DesiredState,
) -> None:
    s = desired.settings
    env = "Environment"
    assert (s.api_listen, s.api_port, s.page_size) == (
        default(env, "spec.api.listen"), default(env, "spec.api.port"),
        default(env, "spec.api.pageSize"),
    )  # fmt: skip
    assert s.busy_timeout_s == parse_duration(str(default(env, "spec.database.busyTimeout")))
    assert s.max_body_bytes == parse_size(str(default(env, "spec.core.maxBodySize")))
    assert s.reconciler_metrics_port == default(env, "spec.reconciler.metricsPort")
    core = desired.deployment("core")
    assert core is not None
    assert core.replicas == default("Deployment", "spec.replicas")
    assert core.strategy.type == default("Deployment", "spec.strategy.type")
    assert core.strategy.max_unavailable == default("Deployment", "spec.strategy.maxUnavailable")
    assert core.restart.policy == default("Deployment", "spec.restart.policy")
    assert core.health.path is None, "no http block: systemd state only"
    api = desired.deployment("api")
    assert api is not None and api.health.path == default(
        "Deployment", "spec.healthCheck.http.path"
    )
    (src,) = desired.sources
    assert src.interval_s == parse_duration(str(default("Source", "spec.interval")))
    assert src.rate_limit is not None
    assert src.rate_limit.burst == default("Source", "spec.rateLimit.burst")
    (channel,) = desired.channels
    assert channel.settings["maxAlerts"] == default("AlertChannel", "spec.webhook.maxAlerts")
    timeout = default("AlertChannel", "spec.webhook.timeout")
    assert channel.settings["timeout"] == parse_duration(str(timeout))
    (rule,) = desired.rules
    assert rule.severity == default("AlertRule", "spec.severity")
    assert desired.backup is not None
    assert desired.backup.keep_last == default("BackupPolicy", "spec.retention.keepLast")


def test_build_reads_the_schema_not_a_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = schema.defaults

    def patched(kind: str) -> dict[str, object]:
        found = real(kind)
        return {**found, "spec.api.port": 18123} if kind == "Environment" else found

    monkeypatch.setattr(schema, "defaults", patched)
    (tmp_path / "environments" / "dev").mkdir(parents=True)
    (tmp_path / "environments" / "dev" / "all.yaml").write_text(MINIMAL)
    manifests = assemble(load_repository(tmp_path), "dev")
    desired = build_stage.build(manifests, Revision("x"), tmp_path, None)
    assert desired.settings.api_port == 18123


def test_the_model_repeats_no_default() -> None:
    for cls in (model.Settings, model.Strategy, model.RestartPolicy, model.HealthCheck):
        with_default = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        ]
        assert with_default == [], f"{cls.__name__}: {with_default} repeat schema defaults"


def test_an_unknown_default_is_a_clear_bug() -> None:
    with pytest.raises(KeyError, match=r"documents no default for spec\.api\.nope"):
        schema.default_of("Environment", "spec.api.nope")
