"""The planner (pure) and the applier, on a folder host with the in-memory runtime."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reconciler import planfmt
from reconciler.errors import ManifestError
from tests.support.hosts import FolderHost

UNITS = "/home/atlas/.config/systemd/user"
CONFIG = "/home/atlas/.config/atlas"


@pytest.fixture
def host(tmp_path: Path) -> FolderHost:
    return FolderHost(tmp_path / "root")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def verbs(plan) -> list[tuple[str, str]]:
    return [(a.verb, a.target) for a in plan.actions]


def test_first_plan_creates_everything_in_order(host: FolderHost, example_repo: Path) -> None:
    plan, _ = host.plan(example_repo, "development")
    order = [a.verb for a in plan.actions]
    assert order.index("mkdir") < order.index("write") < order.index("daemon-reload")
    assert order.index("daemon-reload") < order.index("start") < order.index("enable")
    starts = plan.units("start")
    assert starts == [
        "atlas-core.service",
        "atlas-api.service",
        "atlas-services.timer",
        "atlas-monitoring.service",
    ]
    writes = [a.target for a in plan.actions if a.verb == "write"]
    first_unit = next(i for i, t in enumerate(writes) if t.startswith(UNITS))
    assert all(not t.startswith(UNITS) for t in writes[:first_unit]), "configs before units"
    assert all(t.startswith(UNITS) for t in writes[first_unit:])


def test_converged_host_plans_nothing(host: FolderHost, example_repo: Path) -> None:
    host.converge(example_repo, "development")
    again, _ = host.plan(example_repo, "development")
    assert again.empty, planfmt.as_text(again)
    env_file = host.disk(f"{CONFIG}/monitoring.env")
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"


def test_changing_one_source_restarts_only_core(host: FolderHost, example_repo: Path) -> None:
    host.converge(example_repo, "development")
    edit(example_repo / "base/sources.yaml", "interval: 1h", "interval: 2h")
    plan, _ = host.plan(example_repo, "development")
    assert plan.units("restart") == ["atlas-core.service"]
    assert [a.target for a in plan.actions if a.verb == "write"] == [
        f"{CONFIG}/core.json",
        f"{UNITS}/atlas-core.service",
    ]
    text = planfmt.as_text(plan)
    assert '-      "intervalSeconds": 3600' in text and '+      "intervalSeconds": 7200' in text


def test_changing_alert_rules_reloads_monitoring(host: FolderHost, example_repo: Path) -> None:
    host.converge(example_repo, "development")
    edit(example_repo / "base/alerting.yaml", "threshold: 100", "threshold: 250")
    plan, _ = host.plan(example_repo, "development")
    assert plan.units("reload") == ["atlas-monitoring.service"]
    assert plan.units("restart") == []


def test_cosmetic_unit_change_leaves_the_unit_running(host: FolderHost, example_repo: Path) -> None:
    host.converge(example_repo, "development")
    unit = host.disk(f"{UNITS}/atlas-api.service")
    edit(unit, "Description=Atlas HTTP API", "Description=something else")
    plan, _ = host.plan(example_repo, "development")
    assert verbs(plan) == [("write", f"{UNITS}/atlas-api.service"), ("daemon-reload", "")]
    assert "changed on the host since Atlas wrote it (drift)" in plan.actions[0].reason


def test_hand_edited_unit_setting_is_reverted_with_a_restart(
    host: FolderHost, example_repo: Path
) -> None:
    host.converge(example_repo, "development")
    edit(host.disk(f"{UNITS}/atlas-api.service"), "MemoryMax=268435456", "MemoryMax=1073741824")
    plan, _ = host.plan(example_repo, "development")
    assert plan.units("restart") == ["atlas-api.service"]
    assert "Service.MemoryMax" in next(a.reason for a in plan.actions if a.verb == "restart")


def test_stopped_unit_is_started_again(host: FolderHost, example_repo: Path) -> None:
    host.converge(example_repo, "development")
    host.runtime.stop("atlas-core.service")
    plan, _ = host.plan(example_repo, "development")
    assert verbs(plan) == [("start", "atlas-core.service")]
    assert plan.actions[0].reason == "not running (inactive)"


def test_install_section_change_reenables(host: FolderHost, example_repo: Path) -> None:
    host.converge(example_repo, "development")
    edit(
        host.disk(f"{UNITS}/atlas-core.service"), "WantedBy=default.target", "WantedBy=other.target"
    )
    plan, _ = host.plan(example_repo, "development")
    assert ("disable", "atlas-core.service") in verbs(plan)
    assert ("enable", "atlas-core.service") in verbs(plan)
    assert plan.units("restart") == []


def test_removed_deployment_is_stopped_and_its_files_removed(
    host: FolderHost, example_repo: Path
) -> None:
    host.converge(example_repo, "development")
    foreign = host.disk(f"{UNITS}/someone-else.service")
    foreign.write_text("[Service]\nExecStart=/bin/true\n")
    host.runtime.start("someone-else.service")
    deployments = example_repo / "base/deployments.yaml"
    docs = deployments.read_text().split("---\n")
    deployments.write_text("---\n".join(d for d in docs if "name: monitoring" not in d))
    plan, _ = host.plan(example_repo, "development")
    assert verbs(plan)[:2] == [
        ("stop", "atlas-monitoring.service"),
        ("disable", "atlas-monitoring.service"),
    ]
    removed = {a.target for a in plan.actions if a.verb == "remove"}
    assert removed == {
        f"{UNITS}/atlas-monitoring.service",
        f"{CONFIG}/monitoring.json",
        f"{CONFIG}/monitoring.env",
    }
    from reconciler.apply import Applier

    _, prepared = host.plan(example_repo, "development")
    Applier(host.layout, host.runtime, host.store).apply(plan, prepared.rendered)
    assert foreign.exists(), "a unit Atlas did not create is never touched"
    assert host.runtime.units["someone-else.service"].running
    assert not host.disk(f"{UNITS}/atlas-monitoring.service").exists()
    assert host.plan(example_repo, "development")[0].empty


def test_files_not_in_the_inventory_are_never_removed(host: FolderHost, example_repo: Path) -> None:
    # A file Atlas would have written, but never did on this host: not ours to remove.
    stray = host.disk(f"{CONFIG}/old-component.json")
    stray.parent.mkdir(parents=True)
    stray.write_text("{}")
    host.converge(example_repo, "development")
    assert stray.exists()


def test_scaling_to_two_replicas_switches_to_a_template_unit(
    host: FolderHost, example_repo: Path
) -> None:
    host.converge(example_repo, "development")
    edit(
        example_repo / "base/deployments.yaml",
        "component: api\n  version: 0.1.0\n  replicas: 1",
        "component: api\n  version: 0.1.0\n  replicas: 2",
    )
    plan, _ = host.plan(example_repo, "development")
    v = verbs(plan)
    assert ("stop", "atlas-api.service") in v
    assert ("remove", f"{UNITS}/atlas-api.service") in v
    assert ("write", f"{UNITS}/atlas-api@.service") in v
    assert plan.units("start") == ["atlas-api@1.service", "atlas-api@2.service"]
    unit = next(a for a in plan.actions if a.target.endswith("atlas-api@.service"))
    assert b"--instance %i" in unit.file.content


def test_new_commit_without_changes_renders_identical_bytes(
    host: FolderHost, example_repo: Path
) -> None:
    _, first = host.plan(example_repo, "development")
    (example_repo / "README.md").write_text("a change elsewhere in the repository\n")
    _, second = host.plan(example_repo, "development")
    assert first.checkout.revision != second.checkout.revision
    assert [(f.path, f.content) for f in first.rendered.files] == [
        (f.path, f.content) for f in second.rendered.files
    ]


def test_secret_change_is_named_never_shown(
    host: FolderHost, example_repo: Path, example_keys
) -> None:
    from reconciler.secrets.keys import load_key_file

    key = example_keys["production"]
    host.converge(example_repo, "production", key)
    ring = load_key_file(key)
    secrets_file = example_repo / "environments/production/secrets.yaml"
    lines = secrets_file.read_text().splitlines()
    lines = [
        f"    smtp_password: {ring.encrypt('smtp_password', 'a-brand-new-password')}"
        if line.strip().startswith("smtp_password:")
        else line
        for line in lines
    ]
    secrets_file.write_text("\n".join(lines) + "\n")
    plan, _ = host.plan(example_repo, "production", key)
    write = next(a for a in plan.actions if a.target.endswith("monitoring.env"))
    assert write.reason == "secret smtp_password changed"
    assert plan.units("restart") == ["atlas-monitoring.service"]
    for text in (planfmt.as_text(plan), planfmt.as_json(plan), planfmt.as_markdown(plan)):
        assert "secret" in text and "smtp_password" in text
        assert "a-brand-new-password" not in text
        assert "production-example-smtp-password" not in text
    doc = json.loads(planfmt.as_json(plan))
    env_entry = next(f for f in doc["files"] if f["path"].endswith("monitoring.env"))
    assert env_entry["diff"] is None
    assert env_entry["secrets"] == [{"name": "smtp_password", "change": "changed"}]


def test_invalid_manifests_plan_nothing(host: FolderHost, example_repo: Path) -> None:
    host.converge(example_repo, "development")
    before = {
        p: p.read_bytes()
        for p in host.root.rglob("*")
        if p.is_file() and "reconciler" not in p.parts
    }
    edit(example_repo / "base/sources.yaml", "interval: 1h", "interval: whenever")
    with pytest.raises(ManifestError) as caught:
        host.plan(example_repo, "development")
    assert "base/sources.yaml:11: Source/welcome: spec.interval" in str(caught.value)
    after = {
        p: p.read_bytes()
        for p in host.root.rglob("*")
        if p.is_file() and "reconciler" not in p.parts
    }
    assert before == after


def test_plan_formats(host: FolderHost, example_repo: Path) -> None:
    plan, _ = host.plan(example_repo, "development")
    doc = json.loads(planfmt.as_json(plan))
    assert doc["changes"] is True and doc["environment"] == "development"
    assert {"action": "daemon-reload", "target": "", "reason": "unit files changed"} in doc[
        "actions"
    ]
    md = planfmt.as_markdown(plan)
    assert md.startswith("### Atlas plan: `development`")
    assert "| 1 | mkdir |" in md and "<details><summary>diff of <code>" in md
    assert "```diff" in md


def test_mode_drift_is_corrected(host: FolderHost, example_repo: Path) -> None:
    host.converge(example_repo, "development")
    env_file = host.disk(f"{CONFIG}/core.env")
    os.chmod(env_file, 0o644)
    plan, _ = host.plan(example_repo, "development")
    assert verbs(plan) == [("write", f"{CONFIG}/core.env")]
    assert plan.actions[0].reason == "mode 0644 → 0600"
