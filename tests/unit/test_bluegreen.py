"""Blue-green: the pure judging of an analysis window (on what prometheus_client really
exports), and the rollout engine's steps against in-memory doubles of systemd, the
replicas and the clock."""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from atlas.httpmetrics import HttpMetrics
from reconciler import analysis, planfmt
from reconciler.host.paths import host_layout
from reconciler.host.testing import FakeReplica, FakeReplicas, FakeRuntime
from reconciler.metrics import ReconcilerMetrics
from reconciler.model import Analysis, AnalysisMetric, BlueGreen
from reconciler.rollout.bluegreen import BlueGreenRollout, RolloutAborted, Target
from reconciler.state import StateStore, state_path
from seams.testing import FakeClock
from tests.support.cli import Atlas
from tests.support.hosts import FolderHost

DEFAULT = (AnalysisMetric("errorRatio", None, 0.01, None), AnalysisMetric("p99", None, None, 2.0))
PREVIEW = 18500
API = "  component: api\n  version: {}\n"


def exported(served: list[tuple[int, float]]) -> str:
    registry = CollectorRegistry()
    m = HttpMetrics(registry)
    for status, seconds in served:
        m.observe("/v1/items", "GET", status, seconds)
    m.observe("/metrics", "GET", 500, 9.0)  # scrapes are never judged
    return generate_latest(registry).decode()


def window(served: list[tuple[int, float]]) -> analysis.Window:
    return analysis.Window.between(analysis.Sample(), analysis.parse(exported(served)))


def test_error_ratio_above_stable_plus_one_point_fails() -> None:
    stable = window([(200, 0.002)] * 99 + [(503, 0.002)])  # 1 %
    close = window([(200, 0.002)] * 98 + [(500, 0.002)] * 2)  # 2 %: at the bound
    worse = window([(200, 0.002)] * 97 + [(500, 0.002)] * 3)  # 3 %
    assert analysis.judge(DEFAULT, close, stable).ok
    m = analysis.judge(DEFAULT, worse, stable)
    assert not m.ok and m.failures == ("errorRatio 0.03 above 0.02",)
    assert m.values["stable.errorRatio"] == pytest.approx(0.01)


def test_p99_above_twice_stable_fails_and_without_stable_only_absolute_bounds() -> None:
    stable = window([(200, 0.004)] * 100)  # p99 in the 5 ms bucket
    slow = window([(200, 0.004)] * 90 + [(200, 0.04)] * 10)  # p99 in the 50 ms bucket
    m = analysis.judge(DEFAULT, slow, stable)
    assert m.failures == ("p99 0.05 above 0.01",)
    assert analysis.judge(DEFAULT, slow, None).ok, "no stable p99: nothing to compare"
    one_bucket_up = window([(200, 0.0009)] * 100), window([(200, 0.002)] * 100)
    assert analysis.judge(DEFAULT, one_bucket_up[1], one_bucket_up[0]).ok, (
        "1 ms -> 2.5 ms bucket: twice stable rounds up to the bucket holding it"
    )
    bounded = (AnalysisMetric("p99", 0.02, None, None),)
    assert not analysis.judge(bounded, slow, None).ok
    erring = window([(200, 0.002)] * 98 + [(500, 0.002)] * 2)
    assert not analysis.judge(DEFAULT, erring, None).ok, "no stable: against 0 errors"


def test_unreadable_metrics_are_a_clear_error() -> None:
    with pytest.raises(analysis.MetricsUnreadable, match="not Prometheus text"):
        analysis.parse('atlas_http_requests_total{route="/" 1\n')


def test_the_tally_fails_past_the_failure_limit_and_passes_after_count() -> None:
    tally = analysis.Tally(Analysis(1.0, 3, 1, 20, DEFAULT))
    bad, good = analysis.Measurement(False, {}, ("x",)), analysis.Measurement(True, {})
    tally.add(bad)
    assert not tally.failed and not tally.passed
    tally.add(good)
    tally.add(good)
    assert tally.passed
    tally.add(bad)
    assert tally.failed and "failed 2 of 4" in tally.reason()


# --------------------------------------------------------------------------- the engine


def target(auto_promote: bool = True, replicas: int = 1) -> Target:
    a = Analysis(5.0, 3, 0, 20, DEFAULT)
    bg = BlueGreen(auto_promote, 30.0, PREVIEW, a)
    return Target("api", "atlas-api@.service", replicas, "0.2.0", bg, "/readyz", 10.0)


Rig = tuple[BlueGreenRollout, FakeRuntime, FakeReplicas, StateStore]


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    runtime, replicas, clock = FakeRuntime(), FakeReplicas(), FakeClock()
    store = StateStore(tmp_path / "state.db", clock=clock.wall)
    runtime.start("atlas-api@1.service")
    runtime.calls.clear()
    replicas.ports[PREVIEW] = FakeReplica("0.1.0")
    reach = SimpleNamespace(runtime=runtime, replicas=replicas, clock=clock)
    metrics = ReconcilerMetrics()
    engine = BlueGreenRollout(reach, store, metrics=metrics)
    return engine, runtime, replicas, store


def unit_calls(runtime: FakeRuntime) -> list[tuple[str, str]]:
    return [c for c in runtime.calls if c[0] != "reset-failed"]


def test_a_good_version_is_started_beside_analysed_and_promoted(rig: Rig) -> None:
    engine, runtime, replicas, store = rig
    new = replicas.ports[PREVIEW + 1] = FakeReplica("0.2.0")
    engine.run(target())
    assert unit_calls(runtime) == [
        ("start-later", "atlas-api@2.service"),
        ("restart", "atlas-api@1.service"),
        ("stop", "atlas-api@2.service"),
    ]
    assert new.data >= 3 * 10, "no traffic: the analysis sent its own requests"
    doc = store.rollouts()["api"]
    assert (doc["result"], doc["from"], doc["to"]) == ("completed", "0.1.0", "0.2.0")
    assert [s["phase"] for s in doc["steps"]] == [
        "install", "start", "analysis", "promote", "switch",
    ]  # fmt: skip
    assert len(doc["analysis"]) == 3 and all(m["ok"] for m in doc["analysis"])
    assert store.events()[0].kind == "rollout-completed"
    metrics = engine.metrics.exposition().decode()
    assert 'atlas_rollouts_total{deployment="api",result="completed"} 1.0' in metrics
    assert 'atlas_rollout_phase{deployment="api",phase="completed"} 1.0' in metrics
    assert 'atlas_rollout_phase{deployment="api",phase="analysis"} 0.0' in metrics
    assert 'atlas_rollout_weight{deployment="api"} 100.0' in metrics


def test_a_version_never_ready_is_aborted_with_the_stable_replicas_untouched(rig: Rig) -> None:
    engine, runtime, replicas, store = rig
    replicas.ports[PREVIEW + 1] = FakeReplica("0.2.0", ready=False)
    with pytest.raises(RolloutAborted, match=r"atlas-api@2.service was not ready within 10s"):
        engine.run(target())
    assert ("restart", "atlas-api@1.service") not in runtime.calls
    assert runtime.units["atlas-api@2.service"].active_state == "inactive"
    doc = store.rollouts()["api"]
    assert doc["result"] == "aborted" and "/readyz answered 503" in doc["reason"]
    metrics = engine.metrics.exposition().decode()
    assert 'atlas_rollouts_total{deployment="api",result="aborted"} 1.0' in metrics
    assert 'atlas_rollout_weight{deployment="api"} 0.0' in metrics


def test_a_version_failing_requests_is_aborted_by_the_analysis(rig: Rig) -> None:
    engine, runtime, replicas, store = rig
    replicas.ports[PREVIEW + 1] = FakeReplica("0.2.0", error_every=4)
    with pytest.raises(RolloutAborted, match=r"analysis failed 1 of 1 .*errorRatio"):
        engine.run(target())
    assert ("restart", "atlas-api@1.service") not in runtime.calls
    assert runtime.units["atlas-api@2.service"].active_state == "inactive"
    assert store.rollouts()["api"]["result"] == "aborted"


def test_the_rollback_after_an_abort_leaves_the_stable_replicas_alone(rig: Rig) -> None:
    engine, runtime, replicas, _ = rig
    replicas.ports[PREVIEW + 1] = FakeReplica("0.2.0", ready=False)
    with pytest.raises(RolloutAborted):
        engine.run(target())
    runtime.calls.clear()
    back = target()
    engine.run(Target(back.deployment, back.template, 1, "0.1.0", back.strategy, "/readyz", 10))
    assert unit_calls(runtime) == [], "the stable replica already runs 0.1.0"


def test_without_auto_promote_it_waits_for_a_person(rig: Rig) -> None:
    engine, runtime, replicas, store = rig
    replicas.ports[PREVIEW + 1] = FakeReplica("0.2.0")
    slept = 0

    def sleep(seconds: float) -> None:
        nonlocal slept
        slept += 1
        if slept == 10:  # paused a while: the operator promotes
            assert store.rollouts()["api"]["phase"] == "paused"
            store.request_rollout("api", "promote")

    engine.clock.sleep = sleep  # type: ignore[method-assign]
    engine.run(target(auto_promote=False))
    assert ("restart", "atlas-api@1.service") in runtime.calls
    assert store.rollouts()["api"]["result"] == "completed"


def test_abort_by_hand_during_the_analysis(rig: Rig) -> None:
    engine, runtime, replicas, store = rig
    replicas.ports[PREVIEW + 1] = FakeReplica("0.2.0")
    store.request_rollout("api", "abort")
    with pytest.raises(RolloutAborted, match="aborted by hand"):
        engine.run(target())
    assert ("restart", "atlas-api@1.service") not in runtime.calls


# --------------------------------------------------------------------------- the plan


def test_the_plan_of_a_version_change_shows_the_blue_green_steps(
    tmp_path: Path, example_repo: Path
) -> None:
    host = FolderHost(tmp_path / "root")
    deployments = example_repo / "base/deployments.yaml"
    text = deployments.read_text()
    text = text.replace(
        "  strategy: {type: rolling, maxUnavailable: 1}\n",
        "  strategy: {type: blueGreen, blueGreen: {previewPort: 18500, autoPromote: false}}\n",
    )
    deployments.write_text(text)
    env = example_repo / "environments/development/environment.yaml"
    env.write_text(env.read_text().replace(
        "  logLevel: debug\n", "  logLevel: debug\n  releases: {source: /srv/wheels}\n"
    ))  # fmt: skip
    host.converge(example_repo, "development")
    config = json.loads(host.disk("/home/atlas/.config/atlas/api.json").read_text())
    assert config["previewPort"] == 18500
    unit = host.disk("/home/atlas/.config/systemd/user/atlas-api@.service").read_text()
    assert "-m atlas api --config /home/atlas/.config/atlas/api.json --instance %i" in unit
    deployments.write_text(text.replace(API.format("0.1.0"), API.format("0.2.0")))
    plan, _ = host.plan(example_repo, "development")
    (restart,) = [a for a in plan.actions if a.verb == "restart"]
    assert restart.target == "atlas-api@1.service"
    assert (
        "blueGreen to 0.2.0: start atlas-api@2.service beside the stable replicas (weight 50%);"
        " pre-promotion analysis 3 x 5s (errorRatio <= stable + 0.01; p99 <= 2 x stable;"
        " failureLimit 0); promote after atlas rollout promote; old replicas keep serving 30s;"
        " restart atlas-api@1.service (weight 100%); stop atlas-api@2.service"
    ) in planfmt.as_text(plan)


# --------------------------------------------------------------------------- the command


def test_atlas_rollout_shows_the_record_and_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    atlas, root = Atlas(), tmp_path / "root"
    layout = host_layout("user", root, os.environ)
    store = StateStore(state_path(layout.on_disk(layout.reconciler_dir)))
    host = ("--scope", "user", "--root", root)
    missing = atlas("rollout", "status", "api", *host)
    assert missing.code == 1 and "no rollout of 'api' recorded on this host" in missing.err
    doc = {"deployment": "api", "strategy": "blueGreen", "from": "0.1.0", "to": "0.2.0",
           "phase": "analysis", "steps": [], "analysis": [], "result": None, "reason": ""}  # fmt: skip
    store.put_rollout("api", doc)
    shown = atlas("rollout", "status", "api", *host, "-o", "json")
    assert shown.code == 0 and json.loads(shown.out)["to"] == "0.2.0"
    asked = atlas("rollout", "abort", "api", *host)
    assert asked.code == 0 and "abort of api requested" in asked.out
    assert store.take_rollout_request("api") == "abort"
    store.put_rollout("api", {**doc, "result": "completed", "finishedAt": 1.0})
    late = atlas("rollout", "promote", "api", *host)
    assert late.code == 1 and "no rollout of 'api' in progress" in late.err
    assert store.take_rollout_request("api") is None


def test_paused_by_hand_it_analyses_then_waits_for_resume(rig: Rig) -> None:
    engine, runtime, replicas, store = rig
    replicas.ports[PREVIEW + 1] = FakeReplica("0.2.0")
    store.request_rollout("api", "pause")
    slept = 0

    def sleep(seconds: float) -> None:
        nonlocal slept
        slept += 1
        if slept == 10:
            assert store.rollouts()["api"]["phase"] == "paused"
            assert ("restart", "atlas-api@1.service") not in runtime.calls
            store.request_rollout("api", "resume")

    engine.clock.sleep = sleep  # type: ignore[method-assign]
    engine.run(target())
    assert store.rollouts()["api"]["result"] == "completed"
