"""The rendered monitoring.json → typed settings: the reconciler's real output loads,
and every bad input is a clear ConfigError."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from atlas.agent.settings import load_settings, settings_from_dict
from atlas.alerting.channels.email import EmailSettings
from atlas.alerting.channels.log import LogSettings
from atlas.alerting.channels.webhook import WebhookSettings
from atlas.errors import ConfigError
from tests.support.examples import EXAMPLE
from tests.support.monitoring import config, rule, webhook_channel


def rendered_monitoring_config(env: str, tmp: Path, key: Path | None) -> dict[str, Any]:
    """What the reconciler renders as /etc/atlas/monitoring.json for ``env``."""
    from reconciler import pipeline
    from reconciler.host.paths import host_layout
    from reconciler.render.desired import HostFacts, RenderContext
    from reconciler.secrets.keys import load_key_file
    from reconciler.secrets.sources import KeyRingSecrets

    layout = host_layout("system", tmp / "root", {})
    target = pipeline.Target(str(EXAMPLE), None, ".", env)
    co = pipeline.fetch(target, tmp / "cache")
    ctx = RenderContext(layout, HostFacts("/usr/bin/python3"), target.invocation)
    secrets = KeyRingSecrets(load_key_file(key)) if key else None
    prepared = pipeline.prepare(co, env, ctx, secrets)
    f = prepared.rendered.file(PurePosixPath("/etc/atlas/monitoring.json"))
    assert f is not None
    data: dict[str, Any] = json.loads(f.content)
    return data


@pytest.mark.parametrize("env", ["development", "staging", "production"])
def test_the_reconcilers_rendered_config_loads(
    env: str, tmp_path: Path, example_keys: dict[str, Path]
) -> None:
    data = rendered_monitoring_config(env, tmp_path, example_keys.get(env))
    s = settings_from_dict(data, "monitoring.json")
    assert {r.name for r in s.alerting.rules} >= {"api-down", "disk-almost-full", "source-failing"}
    api_down = next(r for r in s.alerting.rules if r.name == "api-down")
    assert str(api_down.selector) == 'atlas_component_up{component="api"}'
    assert api_down.for_s == 60 and api_down.severity == "critical"
    assert s.components and all(c.timeout_s > 0 for c in s.components)
    if env == "development":
        dev = s.alerting.channel("ops")
        assert dev is not None and isinstance(dev.settings, LogSettings) and not dev.secret_envs
        assert dev.settings.file == s.data_dir / "alerts.jsonl"
        assert (dev.settings.max_file_bytes, dev.settings.keep_files) == (1024**2, 2)
    if env == "production":
        ops = s.alerting.channel("ops")
        assert ops is not None and isinstance(ops.settings, EmailSettings)
        assert ops.settings.password_env == "ATLAS_SECRET_SMTP_PASSWORD"
        assert ops.settings.port == 587 and ops.settings.security == "starttls"
        pager = s.alerting.channel("pager")
        assert pager is not None and isinstance(pager.settings, WebhookSettings)
        assert pager.settings.url_env == "ATLAS_SECRET_PAGER_WEBHOOK_URL"
        assert pager.settings.url is None and pager.settings.timeout_s == 5


def test_root_prefixes_host_paths(tmp_path: Path) -> None:
    path = tmp_path / "monitoring.json"
    path.write_text(json.dumps(config(Path("/var/lib/atlas/data"))))
    s = load_settings(path, tmp_path / "root")
    assert s.database_path == tmp_path / "root/var/lib/atlas/data/monitoring.db"
    assert s.maintenance_file == tmp_path / "root/var/lib/atlas/data/maintenance.json"


def problem(tmp_path: Path, **kw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(config(tmp_path, **kw), "monitoring.json")
    return str(info.value)


def test_a_rule_naming_an_unknown_channel(tmp_path: Path) -> None:
    msg = problem(tmp_path, rules=[rule("api-down", channels=["pager"])])
    assert "rules[0] (api-down).channels: no channel named 'pager' (channels: hook)" in msg


def test_a_bad_regular_expression(tmp_path: Path) -> None:
    bad = rule(matchers=[{"label": "source", "op": "=~", "value": "hn("}])
    assert "rules[0] (r).matchers[0]: 'hn(' is not a valid regular expression" in problem(
        tmp_path, rules=[bad]
    )


def test_a_bad_annotation_template(tmp_path: Path) -> None:
    bad = rule(annotations={"summary": "{{ labels.source "})
    msg = problem(tmp_path, rules=[bad])
    assert "rules[0] (r).annotations.summary: template error on line 1" in msg


def test_a_bad_channel_template(tmp_path: Path) -> None:
    ch = webhook_channel(templates={"subject": "{{ no_such_variable }}"})
    ch["type"] = "webhook"
    msg = problem(tmp_path, channels=[ch])
    assert "channels[0].templates.subject: unknown name 'no_such_variable'" in msg


def test_duplicates(tmp_path: Path) -> None:
    assert "duplicate rule 'r'" in problem(tmp_path, rules=[rule(), rule()])
    assert "duplicate channel 'hook'" in problem(
        tmp_path, rules=[], channels=[webhook_channel(), webhook_channel()]
    )


def test_a_webhook_needs_exactly_one_url(tmp_path: Path) -> None:
    ch = webhook_channel(webhook={"urlEnv": "ATLAS_SECRET_X"})
    assert "exactly one of url and urlEnv" in problem(tmp_path, channels=[ch])


def test_schema_errors_name_the_field(tmp_path: Path) -> None:
    assert "rules[0].op" in problem(tmp_path, rules=[rule(op="=>")])


def test_a_missing_file_and_bad_json(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file does not exist"):
        load_settings(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  nope")
    with pytest.raises(ConfigError, match=r"bad.json:2: not valid JSON"):
        load_settings(bad)
