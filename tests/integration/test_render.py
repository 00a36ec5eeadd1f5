"""Rendering: units pass systemd-analyze verify, are hardened; configs match their schemas."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from atlas.config import validate_config
from reconciler import pipeline
from reconciler.host.paths import host_layout
from reconciler.model import ReconcilerInvocation
from reconciler.render.desired import HostFacts, RenderContext, Rendered
from reconciler.render.text import env_quote
from reconciler.secrets.keys import load_key_file
from reconciler.secrets.sources import KeyRingSecrets
from tests.support.examples import EXAMPLE

ENVS = ("development", "staging", "production")
SECRET_VALUES = (
    "https://hooks.slack.invalid/services/T000/B000/staging-example",
    "staging-example-hook-secret",
    "production-example-smtp-password",
    "https://pager.invalid/hook/production-example",
    "production-example-backup-passphrase",
    "production-example-hook-secret",
)


def render_env(env: str, scope: str, root: Path, keys: dict[str, Path]) -> Rendered:
    layout = host_layout(scope, root, {"HOME": "/home/atlas"})  # type: ignore[arg-type]
    ctx = RenderContext(
        layout,
        HostFacts.current(),
        ReconcilerInvocation("https://git.example.com/m.git", "main"),
    )
    co = pipeline.fetch(pipeline.Target(str(EXAMPLE), None, ".", env), root / "cache")
    secrets = KeyRingSecrets(load_key_file(keys[env])) if env in keys else None
    return pipeline.prepare(co, env, ctx, secrets).rendered


def write_out(rendered: Rendered, root: Path, scope: str) -> Path:
    layout = host_layout(scope, root, {"HOME": "/home/atlas"})  # type: ignore[arg-type]
    for f in rendered.files:
        path = layout.on_disk(f.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.content)
        os.chmod(path, f.mode)
    return layout.on_disk(layout.unit_dir)


@pytest.mark.parametrize("scope", ["user", "system"])
@pytest.mark.parametrize("env", ENVS)
def test_units_pass_systemd_analyze_verify(
    tmp_path: Path, env: str, scope: str, example_keys
) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: scripts/test installs the systemd package")
    rendered = render_env(env, scope, tmp_path / "root", example_keys)
    unit_dir = write_out(rendered, tmp_path / "root", scope)
    units = sorted(p.name for p in unit_dir.iterdir() if p.suffix in (".service", ".timer"))
    assert "atlas-api.service" in units or "atlas-api@.service" in units
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    cmd = ["systemd-analyze", *(["--user"] if scope == "user" else []), "verify", *units]
    done = subprocess.run(
        cmd,
        cwd=unit_dir,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
    )
    assert done.returncode == 0, done.stderr
    # verify also complains about instances of templates: check one instance of each
    templates = [u for u in units if "@." in u]
    for template in templates:
        instance = template.replace("@.", "@1.")
        shutil.copy(unit_dir / template, unit_dir / instance)
        again = subprocess.run(
            [*cmd[: -len(units)], instance],
            cwd=unit_dir,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        )
        assert again.returncode == 0 and again.stderr == "", again.stderr
    assert done.stderr == "", f"systemd-analyze verify warned:\n{done.stderr}"


@pytest.mark.parametrize("scope", ["user", "system"])
def test_platform_units_are_hardened(tmp_path: Path, scope: str, example_keys) -> None:
    rendered = render_env("production", scope, tmp_path, example_keys)
    for f in rendered.files:
        if f.kind != "unit" or f.path.suffix != ".service" or "reconciler" in f.path.name:
            continue
        text = f.content.decode()
        for line in (
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "ProtectHome=read-only",
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
            "CapabilityBoundingSet=",
            "SystemCallFilter=@system-service",
            "MemoryMax=",
            "LimitNOFILE=",
        ):
            assert line in text, f"{f.path.name} lacks {line}"
        assert ("DynamicUser=yes" in text) == (scope == "system")


def test_security_exposure_is_low(tmp_path: Path, example_keys) -> None:
    rendered = render_env("production", "system", tmp_path / "root", example_keys)
    unit_dir = write_out(rendered, tmp_path / "root", "system")
    scores = {}
    for unit in (
        "atlas-api@.service",
        "atlas-core.service",
        "atlas-monitoring.service",
        "atlas-services.service",
    ):
        target = unit.replace("@.", "@1.")
        if target != unit:
            shutil.copy(unit_dir / unit, unit_dir / target)
        done = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", target],
            cwd=unit_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
        assert match, done.stdout + done.stderr
        scores[unit] = float(match.group(1))
    assert all(score <= 2.5 for score in scores.values()), scores


@pytest.mark.parametrize("scope", ["user", "system"])
@pytest.mark.parametrize("env", ENVS)
def test_rendered_configs_match_the_schemas_the_services_check(
    tmp_path: Path, env: str, scope: str, example_keys
) -> None:
    rendered = render_env(env, scope, tmp_path, example_keys)
    configs = [f for f in rendered.files if f.kind == "config"]
    assert {f.component for f in configs} == {"api", "core", "services", "monitoring"}
    for f in configs:
        validate_config(json.loads(f.content), f.component, str(f.path))


def test_schema_rejects_a_wrong_config(tmp_path: Path) -> None:
    from atlas.errors import ConfigError

    rendered = render_env("development", "user", tmp_path, {})
    api = next(f for f in rendered.files if f.kind == "config" and f.component == "api")
    config = json.loads(api.content)
    config["port"] = 0
    config["extra"] = True
    with pytest.raises(ConfigError) as caught:
        validate_config(config, "api", "/etc/atlas/api.json")
    assert "/etc/atlas/api.json: port: 0 is less than the minimum of 1" in str(caught.value)
    assert "'extra' was unexpected" in str(caught.value)


def test_secrets_appear_only_in_env_files(tmp_path: Path, example_keys) -> None:
    for env in ("staging", "production"):
        rendered = render_env(env, "system", tmp_path / env, example_keys)
        expected = [v for v in SECRET_VALUES if env in v]
        found_in_env = b"".join(f.content for f in rendered.files if f.kind == "env")
        for value in expected:
            assert env_quote(value).encode() in found_in_env
        for f in rendered.files:
            if f.kind == "env":
                assert f.mode == 0o600
                continue
            for value in SECRET_VALUES:
                assert value.encode() not in f.content, f"{value} leaked into {f.path}"


def test_replicas_render_template_units_with_instances(tmp_path: Path, example_keys) -> None:
    rendered = render_env("production", "system", tmp_path, example_keys)
    names = [u.name for u in rendered.units]
    assert names == [
        "atlas-core.service",
        "atlas-api@1.service",
        "atlas-api@2.service",
        "atlas-services.service",
        "atlas-services.timer",
        "atlas-monitoring.service",
        "atlas-reconciler.service",
    ]
    timer = rendered.file("/etc/systemd/system/atlas-services.timer")
    assert timer is not None and b"OnCalendar=*-*-* 03:00:00" in timer.content


def test_env_quote_escapes_what_systemd_unescapes() -> None:
    assert env_quote('a "b" \\ $HOME\nnext') == '"a \\"b\\" \\\\ $HOME\nnext"'


def test_channel_defaults_are_rendered_once(tmp_path: Path, example_keys) -> None:
    rendered = render_env("staging", "user", tmp_path, example_keys)
    monitoring = next(
        f for f in rendered.files if f.kind == "config" and f.component == "monitoring"
    )
    slack = next(c for c in json.loads(monitoring.content)["channels"] if c["name"] == "ops")[
        "slack"
    ]
    assert slack == {
        "urlEnv": "ATLAS_SECRET_SLACK_WEBHOOK_URL",
        "channel": "#atlas-staging",
        "username": "atlas",
        "timeoutSeconds": 10,
    }


def test_an_installation_under_tmp_is_bound_into_the_sandbox(tmp_path: Path, monkeypatch) -> None:
    """PrivateTmp= hides /tmp from the services: a venv or checkout there is bound back."""
    from reconciler.render import desired as render_module

    monkeypatch.setattr(render_module, "PROJECT_ROOT", Path("/tmp/checkout"))
    facts = HostFacts.current("/var/tmp/venv/bin/python")
    assert {"/tmp/checkout", "/var/tmp/venv"} <= set(facts.bind_read_only)
    monkeypatch.setattr(render_module, "PROJECT_ROOT", Path("/srv/atlas"))
    assert "/srv/atlas" not in HostFacts.current("/opt/venv/bin/python").bind_read_only
    layout = host_layout("user", tmp_path, {"HOME": "/home/atlas"})
    ctx = RenderContext(
        layout,
        HostFacts("/tmp/checkout/.venv/bin/python", ("/tmp/checkout",)),
        ReconcilerInvocation("https://git.example.com/m.git", "main"),
    )
    dev = pipeline.prepare(
        pipeline.fetch(pipeline.Target(str(EXAMPLE), None, ".", "development"), tmp_path / "cache"),
        "development",
        ctx,
        None,
    ).rendered
    for f in dev.files:
        if f.kind == "unit" and f.path.suffix == ".service":
            assert b"BindReadOnlyPaths=/tmp/checkout\n" in f.content, f.path


def test_units_running_this_installation_restart_when_its_code_changes(
    tmp_path: Path,
) -> None:
    """An upgrade in place (same version, new code) restarts the units that run it, so
    none keeps serving stale code against a database the new code migrated."""
    from dataclasses import replace

    facts = HostFacts.current()
    assert facts.code, "this installation has a code digest"

    def units(f: HostFacts) -> dict[str, bytes]:
        layout = host_layout("user", tmp_path, {"HOME": "/home/atlas"})  # type: ignore[arg-type]
        ctx = RenderContext(
            layout, f, ReconcilerInvocation("https://git.example.com/m.git", "main")
        )
        co = pipeline.fetch(pipeline.Target(str(EXAMPLE), None, ".", "development"), tmp_path / "c")
        rendered = pipeline.prepare(co, "development", ctx, None).rendered
        return {str(x.path): x.content for x in rendered.files if x.kind == "unit"}

    before = units(facts)
    after = units(replace(facts, code="0" * 16))
    services = [n for n in before if n.endswith(".service")]
    assert services and all(before[n] != after[n] for n in services), "every trigger changed"
    assert units(facts) == before, "the same code renders byte for byte the same"
