"""spec.api.auth and spec.api.tls of an Environment, from manifests to rendered files:
token values only in api's 0600 env file, api.json naming tokens, scopes and env
variables; references checked; a warning for an open API; a rotated token restarts
the API through its rolling strategy; an https health check under TLS."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler import pipeline
from reconciler.host.paths import host_layout
from reconciler.render.desired import HostFacts, RenderContext, Rendered
from reconciler.secrets.keys import load_key_file
from reconciler.secrets.sources import KeyRingSecrets
from tests.support.cli import Atlas
from tests.support.git import GitRepo
from tests.support.leakcheck import LeakCheck

ENV_FILE = "environments/production/environment.yaml"
LISTEN = "api: {listen: 0.0.0.0, port: 8080, pageSize: 100}"
WITH_TOKEN = (
    "api:\n    listen: 0.0.0.0\n    port: 8080\n    pageSize: 100\n"
    "    auth:\n      tokens: [{name: reader, secret: api_token_reader, scopes: [read]}]"
)
TOKEN = "api-token-reader-7d2c9e41b8"
ROTATED = "api-token-rotated-3a6f0d95c2"


def set_secret(atlas: Atlas, repo: GitRepo, key: Path, name: str, value: str) -> None:
    args = ["secrets", "set", "production", name, "--repo", repo.path, "--key-file", key]
    assert atlas(*args, stdin=value.encode()).code == 0


@pytest.fixture
def repo(tmp_path: Path, example_keys: dict[str, Path], atlas: Atlas) -> GitRepo:
    """main: production's API with a token ``reader``."""
    r = GitRepo(tmp_path / "repo")
    set_secret(atlas, r, example_keys["production"], "api_token_reader", TOKEN)
    r.edit(ENV_FILE, LISTEN, WITH_TOKEN)
    r.commit("production: the API needs a token")
    return r


def render(repo: GitRepo, ref: str, key: Path, cache: Path) -> Rendered:
    layout = host_layout("user", cache / "host", os.environ)
    ctx = RenderContext(layout, HostFacts.current(), None)
    co = pipeline.fetch(pipeline.Target(str(repo.path), ref, ".", "production"), cache)
    return pipeline.prepare(co, "production", ctx, KeyRingSecrets(load_key_file(key))).rendered


def test_token_values_reach_only_the_api_env_file(
    repo: GitRepo, example_keys: dict[str, Path], tmp_path: Path
) -> None:
    rendered = render(repo, "main", example_keys["production"], tmp_path / "cache")
    by_name = {f.path.name: f for f in rendered.files}
    config = json.loads(by_name["api.json"].content)
    assert config["auth"] == {
        "tokens": [{"name": "reader", "scopes": ["read"], "env": "ATLAS_SECRET_API_TOKEN_READER"}],
        "protectMetrics": False,
    }
    assert config["tls"] is None
    env = by_name["api.env"]
    assert env.mode == 0o600
    assert f'ATLAS_SECRET_API_TOKEN_READER="{TOKEN}"' in env.content.decode()
    leaks = LeakCheck({"api_token_reader": TOKEN})
    for f in rendered.files:
        if f.path.name != "api.env":
            leaks.bytes(str(f.path), f.content)
    leaks.assert_clean()


def test_a_missing_token_secret_is_an_error_and_an_open_api_a_warning(
    repo: GitRepo, atlas: Atlas
) -> None:
    repo.edit(ENV_FILE, "secret: api_token_reader", "secret: api_token_nope")
    bad = atlas("validate", repo.path, "--env", "production")
    assert bad.code == 1
    assert "spec.api.auth.tokens[0].secret" in bad.out or "tokens.0.secret" in bad.out, bad.out
    assert "api_token_nope" in bad.out
    repo.git("checkout", "-q", "--", ".")
    ok = atlas("validate", repo.path, "--env", "production")
    assert ok.code == 0, ok.output
    assert "warning" not in ok.err
    repo.edit(ENV_FILE, WITH_TOKEN, LISTEN)
    warned = atlas("validate", repo.path, "--env", "production")
    assert warned.code == 0, warned.output  # a warning, not an error
    assert "warning:" in warned.err and "0.0.0.0 with no tokens" in warned.err
    js = atlas("validate", repo.path, "--env", "production", "-o", "json")
    assert "no tokens" in json.loads(js.out)["warnings"][0]["message"]


def test_rotating_a_token_restarts_the_api_rolling(
    repo: GitRepo, example_keys: dict[str, Path], tmp_path: Path, atlas: Atlas
) -> None:
    key = example_keys["production"]
    repo.branch("rotate")
    set_secret(atlas, repo, key, "api_token_reader", ROTATED)
    repo.commit("rotate the API token")
    before = render(repo, "main", key, tmp_path / "c1")
    after = render(repo, "rotate", key, tmp_path / "c2")
    units = {f.path.name: f.content for f in before.files if f.kind == "unit"}
    changed = {
        f.path.name for f in after.files if f.kind == "unit" and units.get(f.path.name) != f.content
    }
    assert any(name.startswith("atlas-api") for name in changed), changed  # restart trigger
    assert not any(name.startswith("atlas-core") for name in changed), changed
    plan = atlas(
        "plan", "--repo", repo.path, "--base", "main", "--head", "rotate",
        "--env", "production", "--key-file", key, "-o", "text",
        "--scope", "user", "--root", tmp_path / "none",
    )  # fmt: skip
    assert plan.code == 2, plan.output
    assert "secret api_token_reader changed" in plan.out
    for n in (1, 2):  # production runs two replicas, restarted one at a time
        assert f"restart       atlas-api@{n}.service" in plan.out
    assert "atlas-core" not in plan.out
    strategies = {u.strategy.type for u in after.units if u.component == "api" and u.strategy}
    assert strategies == {"rolling"}
    leaks = LeakCheck({"old": TOKEN, "new": ROTATED})
    leaks.text("atlas plan", plan.output)
    leaks.assert_clean()


def test_tls_from_files_makes_the_health_check_https(
    repo: GitRepo, example_keys: dict[str, Path], tmp_path: Path
) -> None:
    repo.edit(
        ENV_FILE,
        "    auth:",
        "    tls: {certFile: /etc/atlas/tls/cert.pem, keyFile: /etc/atlas/tls/key.pem}\n    auth:",
    )
    repo.commit("production: HTTPS")
    rendered = render(repo, "main", example_keys["production"], tmp_path / "cache")
    config = json.loads(next(f for f in rendered.files if f.path.name == "api.json").content)
    assert config["tls"] == {
        "certFile": "/etc/atlas/tls/cert.pem",
        "keyFile": "/etc/atlas/tls/key.pem",
    }
    api_units = [u for u in rendered.units if u.component == "api"]
    assert api_units and all(u.probe and u.probe.url.startswith("https://") for u in api_units)
    core_units = [u for u in rendered.units if u.component == "core"]
    assert all(u.probe is None or u.probe.url.startswith("http://") for u in core_units)


def test_half_a_tls_pair_is_a_clear_error(repo: GitRepo, atlas: Atlas) -> None:
    repo.edit(ENV_FILE, "    auth:", "    tls: {certSecret: api_token_reader}\n    auth:")
    bad = atlas("validate", repo.path, "--env", "production")
    assert bad.code == 1
    assert "spec.api.tls: 'keySecret' is a dependency of 'certSecret'" in bad.out, bad.out
    assert "Traceback" not in bad.output
