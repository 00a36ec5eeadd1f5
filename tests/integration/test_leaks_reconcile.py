"""No secret, nor a plain hash of one, in what the reconcile loop leaves behind:
the state database, metrics, log lines, plans, `atlas history` and `atlas status`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from atlas.cli import main
from reconciler import planfmt
from reconciler.secrets.keys import load_key_file
from reconciler.secrets.sources import KeyRingSecrets
from tests.support.examples import example_values
from tests.support.git import commit
from tests.support.leakcheck import LeakCheck
from tests.support.rigs import Rig


@pytest.fixture
def prod_rig(tmp_path: Path, ops_repo: Path, example_keys: dict[str, Path]) -> Rig:
    ring = load_key_file(example_keys["production"])
    return Rig(
        tmp_path / "root", ops_repo, env="production", secrets=lambda env: KeyRingSecrets(ring)
    )


def test_reconcile_outputs_hold_no_secret_or_plain_hash(
    prod_rig: Rig, ops_repo: Path, example_keys: dict[str, Path], monkeypatch, capsys
) -> None:
    values = example_values(example_keys)["production"]
    ring = load_key_file(example_keys["production"])
    first = prod_rig.reconciler.cycle()
    assert first.outcome == "applied", first.reason
    # a secret changes, then a revision fails and is rolled back
    secrets_file = "environments/production/secrets.yaml"
    old = next(
        line
        for line in (ops_repo / secrets_file).read_text().splitlines()
        if "smtp_password:" in line
    )
    new_value = "a-rotated-smtp-password-value"
    commit(
        ops_repo,
        secrets_file,
        old,
        f"    smtp_password: {ring.encrypt('smtp_password', new_value)}",
    )
    second = prod_rig.reconciler.cycle()
    assert second.outcome == "applied" and "secret smtp_password changed" in planfmt.as_text(
        second.plan
    )
    commit(ops_repo, "environments/production/environment.yaml", "port: 8080", "port: 8081")
    prod_rig.http.failing["http://127.0.0.1:8081/"] = None
    third = prod_rig.reconciler.cycle()
    assert third.outcome == "rolled-back", third.reason

    secrets = {**values, "smtp_password (new)": new_value}
    env_files = sorted(prod_rig.host.root.rglob("*.env"))
    assert env_files
    plain_hashes = {
        f"sha256 of {p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in env_files
    }
    plain_hashes.update(
        {f"sha256 of {n}": hashlib.sha256(v.encode()).hexdigest() for n, v in secrets.items()}
    )
    leaks = LeakCheck({**secrets, **plain_hashes})
    state_db = next(prod_rig.host.root.rglob("state.db"))
    leaks.sqlite(state_db)
    leaks.bytes("metrics", prod_rig.metrics.exposition())
    leaks.text("log lines", "\n".join(f"{level}: {msg}" for level, msg in prod_rig.logs))
    for result in (first, second, third):
        leaks.text("cycle reason", result.reason)
        if result.plan is not None:
            for render in (planfmt.as_text, planfmt.as_json, planfmt.as_markdown):
                leaks.text(f"plan {render.__name__}", render(result.plan))
    # the CLI views of the same state
    monkeypatch.setenv("HOME", "/home/atlas")
    for var in ("XDG_CONFIG_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    root = str(prod_rig.host.root)
    for args in (
        ["history", "--scope", "user", "--root", root, "--output", "json"],
        ["history", "--events", "--scope", "user", "--root", root],
    ):
        assert main(args) == 0
        out = capsys.readouterr()
        leaks.text(" ".join(args), out.out + out.err)
    leaks.tree(prod_rig.host.root, allow=env_files)
    leaks.assert_clean()
    # and the env files do hold what the services need
    assert any(
        values["smtp_password"].encode() not in p.read_bytes()
        and new_value.encode() in p.read_bytes()
        for p in env_files
    )
