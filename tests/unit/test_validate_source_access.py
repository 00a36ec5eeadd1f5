"""Validation of what a Source may reach and how it carries credentials."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_validate import ENV, make_repo, problems_of, the_problem

RSS = "apiVersion: atlas/v1\nkind: Source\nmetadata: {name: a}\nspec:\n  type: rss\n"


def test_credentials_in_a_url_are_refused_pointing_at_secrets(tmp_path: Path) -> None:
    make_repo(tmp_path, {"base/s.yaml": RSS + "  url: http://user:pass@feeds.example/x\n"})
    p = the_problem(tmp_path)
    assert (p.file, p.line, p.ref) == ("base/s.yaml", 6, "Source/a")
    assert p.message.startswith("spec.url: expected a URL without credentials")
    assert "spec.basicAuth" in p.message and "spec.urlSecret" in p.message
    assert "pass" not in p.message.replace("password", "")


def test_url_and_url_secret_together_are_refused(tmp_path: Path) -> None:
    text = RSS + "  url: https://feeds.example/x\n  urlSecret: feed_url\n"
    make_repo(tmp_path, {"base/s.yaml": text})
    assert "expected exactly one of url or urlSecret" in the_problem(tmp_path).message


def test_secret_references_of_a_source_must_resolve(tmp_path: Path) -> None:
    text = RSS + (
        "  urlSecret: feed_url\n  basicAuth: {usernameSecret: feed_user, passwordSecret: pw}\n"
    )
    env = ENV.replace("spec: {}", "spec: {secrets: dev-secrets}")
    secrets = (
        "apiVersion: atlas/v1\nkind: Secrets\nmetadata: {name: dev-secrets}\n"
        "spec: {data: {feed_user: x}}\n"
    )
    make_repo(tmp_path, {"base/s.yaml": text, "environments/dev/secrets.yaml": secrets}, env)
    found = sorted(p.message for p in problems_of(tmp_path))
    assert len(found) == 2, found
    assert found[0].startswith("spec.basicAuth.passwordSecret: no secret named 'pw'")
    assert found[1].startswith("spec.urlSecret: no secret named 'feed_url'")


def test_allowances_are_accepted_and_a_bad_network_is_located(tmp_path: Path) -> None:
    env = ENV.replace(
        "spec: {}", 'spec:\n  sources: {allowPrivateNetworks: ["10.0.0.0/8", "10.0.0.300/32"]}\n'
    )
    text = RSS + "  url: http://127.0.0.1:8000/feed\n  fetch: {allowPrivate: true}\n"
    make_repo(tmp_path, {"base/s.yaml": text}, env)
    p = the_problem(tmp_path)
    assert (p.file, p.ref) == ("environments/dev/env.yaml", "Environment/dev")
    assert p.message == (
        "spec.sources.allowPrivateNetworks[1]: expected a network in CIDR form such as "
        '10.0.0.0/8 or fd00::/8; got "10.0.0.300/32"'
    )
