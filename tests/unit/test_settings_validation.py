"""Environment settings are validated for type and range — ports, durations, sizes,
paths, log levels — and each error names the file, the line of the offending value,
the document and what was expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconciler.errors import printable
from tests.support.cli import Atlas, dry_run_args

ENVIRONMENT = """\
apiVersion: atlas/v1
kind: Environment
metadata:
  name: staging
spec:
  logLevel: info
  secrets: staging-secrets
  database:
    path: atlas.db
    busyTimeout: 5s
  api:
    listen: 127.0.0.1
    port: 8080
    pageSize: 50
  core:
    metricsPort: 9101
    concurrency: 4
    timeout: 10s
    maxBodySize: 10M
  monitoring:
    metricsPort: 9102
    interval: 10s
  reconciler:
    enabled: true
    interval: 1m
    metricsPort: 9110
    webhookSecret: git_webhook_secret
"""
FILE = "environments/staging/environment.yaml"
DURATION = "a duration like 30s, 15m, 2h or 1h30m (units ms, s, m, h, d, w)"
PORT = "a TCP port number from 1 to 65535"
SIZE = "a size in bytes with an optional K, M, G or T suffix (binary multiples), like 512M"
LEVELS = "one of debug, info, warning, error"
RELATIVE = (
    "a relative path with '/' separators, without control characters (tabs, newlines), "
    "that stays inside its base folder"
)

CASES = [
    # (line, replacement line, message after "Environment/staging: ")
    (13, "    port: http", f'spec.api.port: expected {PORT}; got "http"'),
    (13, "    port: 70000", f"spec.api.port: expected {PORT}; got 70000"),
    (13, "    port: 0", f"spec.api.port: expected {PORT}; got 0"),
    (13, "    port: 80.5", f"spec.api.port: expected {PORT}; got 80.5"),
    (
        16,
        "    metricsPort: 8080",
        "spec.core.metricsPort: port 8080 is already used by spec.api.port",
    ),
    (18, "    timeout: 10 seconds", f'spec.core.timeout: expected {DURATION}; got "10 seconds"'),
    (18, "    timeout: 10", f"spec.core.timeout: expected {DURATION}; got 10"),
    (18, "    timeout: 0s", 'spec.core.timeout: expected a duration from 1s to 10m; got "0s"'),
    (
        18,
        "    timeout: 500ms",
        'spec.core.timeout: expected a duration from 1s to 10m; got "500ms"',
    ),
    (
        22,
        "    interval: 2h",
        'spec.monitoring.interval: expected a duration from 1s to 1h; got "2h"',
    ),
    (
        25,
        "    interval: 1s",
        'spec.reconciler.interval: expected a duration from 10s to 1d; got "1s"',
    ),
    (
        10,
        "    busyTimeout: 10m",
        'spec.database.busyTimeout: expected a duration from 100ms to 5m; got "10m"',
    ),
    (19, "    maxBodySize: 10MB", f'spec.core.maxBodySize: expected {SIZE}; got "10MB"'),
    (19, "    maxBodySize: 2G", 'spec.core.maxBodySize: expected a size from 1K to 1G; got "2G"'),
    (
        19,
        '    maxBodySize: "512"',
        'spec.core.maxBodySize: expected a size from 1K to 1G; got "512"',
    ),
    (
        9,
        "    path: /var/lib/atlas.db",
        f'spec.database.path: expected {RELATIVE}; got "/var/lib/atlas.db"',
    ),
    (9, "    path: ../atlas.db", f'spec.database.path: expected {RELATIVE}; got "../atlas.db"'),
    (
        9,
        "    path: data/",
        'spec.database.path: expected the path of a file, not of a folder; got "data/"',
    ),
    (
        9,
        "    path: data//atlas.db",
        "spec.database.path: expected a plain relative path (no '.' or empty parts, no '//'); "
        'got "data//atlas.db"',
    ),
    (
        9,
        '    path: "data/\\tatlas.db"',
        f'spec.database.path: expected {RELATIVE}; got "data/\\tatlas.db"',
    ),
    (
        6,
        "  logLevel: verbose",
        'spec.logLevel: expected one of debug, info, warning, error; got "verbose"',
    ),
    (
        6,
        "  logLevel: INFO",
        f'spec.logLevel: expected {LEVELS}; got "INFO" (did you mean info?)',
    ),
    (
        6,
        "  logLevel: warn",
        f'spec.logLevel: expected {LEVELS}; got "warn" (did you mean warning?)',
    ),
    (14, "    pageSize: 0", "spec.api.pageSize: expected a whole number from 1 to 1000; got 0"),
    (
        17,
        "    concurrency: many",
        'spec.core.concurrency: expected a whole number from 1 to 64; got "many"',
    ),
    (
        12,
        '    listen: "not a host!"',
        "spec.api.listen: expected an IP address or host name to listen on or connect to; "
        'got "not a host!"',
    ),
    (
        24,
        "    enabled: maybe",
        "spec.reconciler.enabled: expected true or false: run atlas-reconciler as a service on "
        'this host; got "maybe"',
    ),
]


def write(repo: Path, line: int | None = None, replacement: str = "") -> None:
    lines = ENVIRONMENT.splitlines()
    if line is not None:
        lines[line - 1] = replacement
    (repo / FILE).write_text("\n".join(lines) + "\n")


def test_the_baseline_is_valid(atlas: Atlas, example_repo: Path) -> None:
    write(example_repo)
    r = atlas("validate", example_repo, "--env", "staging")
    assert r.code == 0, r.out


@pytest.mark.parametrize(
    ("line", "replacement", "message"), CASES, ids=[c[1].strip() for c in CASES]
)
def test_each_bad_setting_is_located_and_explained(
    atlas: Atlas, example_repo: Path, line: int, replacement: str, message: str
) -> None:
    write(example_repo, line, replacement)
    r = atlas("validate", example_repo, "--env", "staging", "-o", "json")
    assert r.code == 1
    errors = json.loads(r.out)["errors"]
    shown = [(e["file"], e["line"], e["ref"], e["message"]) for e in errors]
    assert shown == [(f"{example_repo}/{FILE}", line, "Environment/staging", message)], (
        "exactly this error: one bad setting must not cascade into others"
    )
    text = atlas("validate", example_repo, "--env", "staging")
    shown_text = printable(message)  # a control character (the tab) is printed escaped
    assert f"{example_repo}/{FILE}:{line}: Environment/staging: {shown_text}\n" in text.out


def test_a_bad_setting_stops_a_dry_run_before_anything(
    atlas: Atlas, example_repo: Path, tmp_path: Path, example_keys: dict[str, Path]
) -> None:
    write(example_repo, 22, "    interval: 0s")
    root = tmp_path / "root"
    root.mkdir()
    r = atlas(*dry_run_args(example_repo, "staging", root, "--key-file", example_keys["staging"]))
    assert r.code == 1
    assert f"{FILE}:22: Environment/staging: spec.monitoring.interval: expected a duration" in r.err
    assert "nothing was changed" in r.err
    assert list(root.iterdir()) == []
