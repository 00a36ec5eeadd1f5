"""Credentials of a Source travel as secrets: refused in ``url``, resolved from the
environment's Secrets into core's 0600 env file (never core.json), sent by the
fetch, and never returned by the API or written into its database."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import pytest
import yaml

from atlas.api.reader import Reader
from atlas.core import settings as core_settings
from atlas.core.oneshot import fetch_now
from atlas.core.store import open_store
from reconciler import pipeline
from reconciler.host.paths import host_layout
from reconciler.render.desired import HostFacts, RenderContext
from reconciler.secrets.keys import load_key_file
from reconciler.secrets.sources import KeyRingSecrets
from tests.support.feeds import FeedServer, Reply, entries, rss20
from tests.support.git import git
from tests.support.leakcheck import LeakCheck

USER, PASSWORD = "feed-reader", "s3cret-feed-password"
TOKEN = "tok-7f3a9c1e5b"
SECRET_SOURCES = """\
apiVersion: atlas/v1
kind: Source
metadata: {{name: private-feed}}
spec:
  type: rss
  url: {auth_url}
  basicAuth: {{usernameSecret: feed_user, passwordSecret: feed_password}}
  fetch: {{allowPrivate: true}}
---
apiVersion: atlas/v1
kind: Source
metadata: {{name: token-feed}}
spec:
  type: rss
  urlSecret: feed_url
  fetch: {{allowPrivate: true}}
"""


def add_secrets(repo: Path, env: str, key: Path, values: dict[str, str]) -> None:
    ring = load_key_file(key)
    path = repo / "environments" / env / "secrets.yaml"
    doc = yaml.safe_load(path.read_text())
    for name, value in values.items():
        doc["spec"]["data"][name] = ring.encrypt(name, value)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def render(repo: Path, root: Path, key: Path) -> dict[str, bytes]:
    layout = host_layout("user", root, {"HOME": "/home/atlas"})  # type: ignore[arg-type]
    ctx = RenderContext(layout, HostFacts.current(), None)
    co = pipeline.fetch(pipeline.Target(str(repo), None, ".", "staging"), root / "cache")
    rendered = pipeline.prepare(co, "staging", ctx, KeyRingSecrets(load_key_file(key))).rendered
    return {f.path.name: f.content for f in rendered.files if f.path.name.startswith("core.")} | {
        "core.env mode": oct(
            next(f.mode for f in rendered.files if f.path.name == "core.env")
        ).encode()
    }


def env_file_values(content: bytes) -> dict[str, str]:
    out = {}
    for line in content.decode().splitlines():
        if line.startswith("ATLAS_SECRET_"):
            name, _, value = line.partition("=")
            out[name] = value.strip('"')
    return out


@pytest.fixture
def feeds() -> FeedServer:
    auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    server = FeedServer()

    def private(seen) -> Reply:  # type: ignore[no-untyped-def]
        if seen.headers.get("authorization") != auth:
            return Reply(401, b"who are you")
        return Reply(body=rss20(entries("p", 2)), headers={"Content-Type": "text/xml"})

    server.routes["/private"] = private
    relative = [dataclasses.replace(e, link="entry-1") for e in entries("t", 1)]
    server.routes[f"/t/{TOKEN}/feed"] = Reply(  # a relative link must not carry the token
        body=rss20(relative), headers={"Content-Type": "text/xml"}
    )
    with server:
        yield server


def test_source_credentials_reach_only_the_env_file_and_the_fetch(
    tmp_path: Path, ops_repo: Path, example_keys: dict[str, Path], feeds: FeedServer
) -> None:
    token_url = f"http://127.0.0.1:{feeds.port}/t/{TOKEN}/feed"
    secrets = {"feed_user": USER, "feed_password": PASSWORD, "feed_url": token_url}
    add_secrets(ops_repo, "staging", example_keys["staging"], secrets)
    (ops_repo / "environments/staging/private.yaml").write_text(
        SECRET_SOURCES.format(auth_url=feeds.url("/private"))
    )
    git(ops_repo, "add", "-A")
    git(ops_repo, "commit", "-qm", "private sources")
    files = render(ops_repo, tmp_path / "root", example_keys["staging"])
    assert files["core.env mode"] == b"0o600"
    leaks = LeakCheck({"password": PASSWORD, "token": TOKEN})
    assert leaks.bytes("core.json", files["core.json"]) == []

    # atlas-core as its unit runs it: the config plus the env file's variables
    config = tmp_path / "core.json"
    config.write_bytes(files["core.json"])
    core = core_settings.from_dict(
        core_settings.load_config(config, "core"), config, env_file_values(files["core.env"])
    )
    db = tmp_path / "atlas.db"
    store = open_store(db, 5)
    names = ["private-feed", "token-feed"]
    mine = [s for s in core.sources if s.name in names]
    store.sync_sources(mine, [s.name for s in core.sources], 1000.0)
    outcomes = fetch_now(core, store, names)
    assert [o.ok for o in outcomes] == [True, True], outcomes
    store.close()

    listed = Reader(db, 5).sources()
    mine_listed = [s for s in listed if s["name"] in names]
    assert {s["name"]: s["url"] for s in mine_listed} == {
        "private-feed": feeds.url("/private"),
        "token-feed": None,
    }
    assert leaks.text("/v1/sources", repr(listed)) == []
    assert leaks.sqlite(db) == []


def test_a_missing_secret_variable_fails_the_fetch_saying_which(
    tmp_path: Path, feeds: FeedServer
) -> None:
    from tests.support.feeds import core_config, source, write_json

    raw = source("token-feed", url=None, urlEnv="ATLAS_SECRET_FEED_URL", allowPrivate=True)
    path = write_json(tmp_path / "core.json", core_config(tmp_path / "a.db", [raw]))
    core = core_settings.from_dict(core_settings.load_config(path, "core"), path, {})
    store = open_store(tmp_path / "a.db", 5)
    store.sync_sources(core.sources, [s.name for s in core.sources], 1000.0)  # as core does
    [outcome] = fetch_now(core, store, ["token-feed"])
    store.close()
    assert not outcome.ok
    assert "ATLAS_SECRET_FEED_URL not set in atlas-core's environment" in outcome.message


def test_the_api_never_returns_credentials_an_older_atlas_stored(tmp_path: Path) -> None:
    from tests.support.feeds import core_config, source, write_json

    old_url = f"http://{USER}:{PASSWORD}@feeds.example/feed"
    path = write_json(
        tmp_path / "core.json",
        core_config(tmp_path / "a.db", [source("old", url="http://x.example/")]),
    )
    core = core_settings.from_dict(core_settings.load_config(path, "core"), path, {})
    legacy = dataclasses.replace(core.sources[0], url=old_url)  # as an older Atlas kept it
    store = open_store(tmp_path / "a.db", 5)
    store.sync_sources([legacy], ["old"], 1000.0)
    store.conn.execute("UPDATE sources SET last_error = ?", (f"{old_url}: HTTP 500",))
    store.conn.commit()
    store.close()
    [listed] = Reader(tmp_path / "a.db", 5).sources()
    assert (listed["url"], listed["lastError"]) == (
        "http://feeds.example/feed",
        "http://feeds.example/feed: HTTP 500",
    )


def test_core_refuses_a_config_with_credentials_in_a_url_without_showing_them(
    tmp_path: Path,
) -> None:
    from atlas.errors import ConfigError
    from tests.support.feeds import core_config, source, write_json

    raw = source("a", url=f"http://{USER}:{PASSWORD}@feeds.example/feed")
    path = write_json(tmp_path / "core.json", core_config(tmp_path / "a.db", [raw]))
    with pytest.raises(ConfigError, match=r"sources\[0\]\.url: credentials in a URL") as err:
        core_settings.from_dict(core_settings.load_config(path, "core"), path, {})
    assert PASSWORD not in str(err.value)
