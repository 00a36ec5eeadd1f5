"""``atlas report`` from the history a host keeps, written by the real code: a
converged folder host's content database filled by the worker fetching real feeds
(one good, one failing), revisions and events recorded in its state database, and
alert transitions in the monitoring agent's database; the figures are checked
against what the test wrote, in every output form."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from atlas.alerting.store import open_db
from atlas.cli import main
from atlas.core import settings as core_settings
from atlas.core.store import open_store
from atlas.core.worker import Worker
from reconciler.model import Revision
from reconciler.outcomes import RevisionOutcome
from tests.support.feeds import FeedServer, Reply, core_config, entries, rss20, source
from tests.support.git import example_repo
from tests.support.hosts import FolderHost


def database(host: FolderHost, component: str) -> Path:
    config = host.layout.on_disk(host.layout.config_dir) / f"{component}.json"
    path = host.layout.on_disk(json.loads(config.read_text())["database"]["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def fetch_feeds(db: Path, tmp: Path) -> None:
    with FeedServer() as srv:
        srv.routes["/ok"] = Reply(body=rss20(entries("ok", 3)))
        srv.routes["/bad"] = Reply(500, b"")
        cfg = core_config(
            db, [source("ok", url=srv.url("/ok")), source("bad", url=srv.url("/bad"))]
        )
        settings = core_settings.from_dict(cfg, tmp / "core.json").for_instance(1)
        worker = Worker(settings, open_store(db, 5), rand=lambda: 0.0)
        worker.start()
        worker.run_until_idle(20)
        worker.shutdown()
        worker.store.close()


def record_revisions(host: FolderHost) -> None:
    store = host.store
    for n, outcome in enumerate(
        [RevisionOutcome.APPLIED, RevisionOutcome.FAILED, RevisionOutcome.APPLIED]
    ):
        rev = Revision(f"{n:040x}", "main", "/srv/ops.git", f"change {n}")
        run = store.begin_revision("development", rev, "poll")
        store.finish_revision(run, outcome, "", 2)
    store.event("warning", "drift", "correcting drift: atlas-core.service stopped")
    store.event("warning", "drift", "correcting drift: /etc/atlas/core.json modified")
    store.event("error", "fetch", "cannot fetch /srv/ops.git")


def record_alerts(db: Path, now: float) -> None:
    conn = open_db(db)
    rows = [  # one alert fired and resolved after 10 minutes, one still firing for 5
        (now - 3600, "SourceFailing", "fp1", "pending"),
        (now - 3000, "SourceFailing", "fp1", "firing"),
        (now - 2400, "SourceFailing", "fp1", "resolved"),
        (now - 300, "DiskFull", "fp2", "firing"),
        (now - 90000, "Ancient", "fp3", "firing"),  # before the window, resolved before it
        (now - 89000, "Ancient", "fp3", "resolved"),
    ]
    with conn:
        conn.executemany(
            "INSERT INTO alert_history (at, rule, fingerprint, labels, from_state, to_state,"
            " value, reason) VALUES (?, ?, ?, '{}', 'inactive', ?, 1, '')",
            rows,
        )
    conn.close()


@pytest.fixture
def host(tmp_path: Path, monkeypatch) -> FolderHost:
    h = FolderHost(tmp_path / "root")
    h.converge(example_repo(tmp_path / "ops"), "development")
    fetch_feeds(database(h, "core"), tmp_path)
    record_revisions(h)
    record_alerts(database(h, "monitoring"), time.time())
    h.store.close()
    monkeypatch.setenv("HOME", "/home/atlas")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    return h


def report(host: FolderHost, capsys, *args: str) -> tuple[int, str]:
    code = main(["report", "--scope", "user", "--root", str(host.root), *args])
    return code, capsys.readouterr().out


def test_figures_match_the_history_written(host: FolderHost, capsys) -> None:
    code, out = report(host, capsys, "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["missing"] == []
    ing = doc["ingestion"]
    assert ing["items"] == 3
    assert ing["items_per_hour"] == pytest.approx(3 / 24, abs=0.01)
    assert ing["sources_ok_ratio"] == 0.5
    assert [s["source"] for s in ing["failing_sources"]] == ["bad"]
    assert "HTTP 500" in ing["failing_sources"][0]["last_error"]
    assert ing["top_sources"][0] == {**ing["top_sources"][0], "source": "ok", "items": 3}
    rec = doc["reconciler"]
    assert rec["outcomes"] == {"applied": 2, "failed": 1}
    assert rec["rollbacks"] == 1 and rec["drift_events"] == 2 and rec["fetch_errors"] == 1
    alerts = {a["rule"]: a for a in doc["alerts"]["by_rule"]}
    assert doc["alerts"]["fired"] == 2 and set(alerts) == {"SourceFailing", "DiskFull"}
    assert alerts["SourceFailing"]["firing_seconds"] == 600
    assert 299 <= alerts["DiskFull"]["firing_seconds"] <= 330


def test_a_short_window_leaves_older_history_out(host: FolderHost, capsys) -> None:
    code, out = report(host, capsys, "--since", "1m", "-o", "json")
    doc = json.loads(out)
    assert code == 0
    assert doc["alerts"]["fired"] == 0  # DiskFull fired 5 minutes ago…
    assert [a["rule"] for a in doc["alerts"]["by_rule"]] == ["DiskFull"]  # …and still fires


def test_text_markdown_and_html(host: FolderHost, capsys) -> None:
    _, text = report(host, capsys)
    assert "items stored:" in text and "bad" in text
    _, md = report(host, capsys, "-o", "markdown")
    assert md.startswith("## Atlas report ") and "| bad | 0 | 1 |" in md
    _, page = report(host, capsys, "-o", "html")
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert "<script" not in page and "http" not in page.split("</title>")[1].split("<svg")[0]


def test_a_bad_window_is_a_clear_error(host: FolderHost, capsys) -> None:
    code = main(["report", "--root", str(host.root), "--since", "yesterday"])
    err = capsys.readouterr().err
    assert code == 1 and "--since 'yesterday': expected a duration like 30m, 24h, 7d" in err


def test_a_host_with_no_history_says_what_is_missing(tmp_path: Path, capsys) -> None:
    code = main(["report", "--scope", "user", "--root", str(tmp_path), "-o", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and len(doc["missing"]) == 3 and doc["ingestion"] is None


def test_an_unreadable_content_database_is_named_and_the_rest_reported(
    host: FolderHost, capsys
) -> None:
    db = database(host, "core")
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(b"junk" * 1000)
    code, out = report(host, capsys, "-o", "json")
    doc = json.loads(out)
    assert code == 0 and doc["ingestion"] is None
    assert any("cannot be read (file is not a database)" in m for m in doc["missing"])
    assert doc["reconciler"]["revisions"] == 3 and doc["alerts"]["fired"] == 2
