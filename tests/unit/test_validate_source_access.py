"""Validation of what a Source may reach and how it carries credentials."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://2852039166/latest/meta-data/", "metadata"),
        ("http://0xa9fea9fe/", "metadata"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("http://127.0.0.1:9110/metrics", "loopback"),
        ("http://127.1:9110/", "loopback"),
        ("http://10.0.0.5/feed", "private"),
        ("http://0.0.0.0:8080/", "unspecified"),
    ],
)
def test_a_url_that_is_a_refused_address_fails_validation(
    tmp_path: Path, url: str, kind: str
) -> None:
    make_repo(tmp_path, {"base/s.yaml": RSS + f"  url: {url}\n"})
    p = the_problem(tmp_path)
    assert (p.line, p.ref) == (6, "Source/a")
    assert (
        p.message.startswith("spec.url: ") and f"refused by the address policy: {kind}" in p.message
    )


def test_allowances_open_literal_addresses_as_at_fetch_time(tmp_path: Path) -> None:
    private = RSS + "  url: http://127.0.0.1:8000/feed\n  fetch: {allowPrivate: true}\n"
    metadata = RSS.replace("name: a", "name: m") + (
        "  url: http://169.254.169.254/\n  fetch: {allowPrivate: true}\n"
    )
    make_repo(tmp_path, {"base/s.yaml": private, "base/m.yaml": metadata})
    p = the_problem(tmp_path)  # allowPrivate opens loopback, not metadata
    assert p.ref == "Source/m" and "metadata addresses are refused by default" in p.message
    env = ENV.replace(
        "spec: {}", 'spec:\n  sources: {allowPrivateNetworks: ["169.254.169.254/32"]}\n'
    )
    make_repo(tmp_path, {"base/s.yaml": private, "base/m.yaml": metadata}, env)
    assert problems_of(tmp_path) == []


def test_host_names_are_left_to_the_fetch(tmp_path: Path) -> None:
    make_repo(tmp_path, {"base/s.yaml": RSS + "  url: http://localhost:8000/feed\n"})
    assert problems_of(tmp_path) == []
