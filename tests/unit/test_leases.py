"""The lease SQL on a real SQLite file: claim, renew, release, takeover and the
fence that refuses an expired holder's late store."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from atlas.core.leases import Leases
from atlas.core.model import Item, Job, JobResult
from atlas.core.scheduler import Schedule
from atlas.core.settings import SourceSettings
from atlas.core.store import Store, open_store
from atlas.errors import LeaseLost

NOW = 1_700_000_000.0
PERIOD = 10.0


def src(name: str) -> SourceSettings:
    return SourceSettings(name, "text", None, True, 60.0, None, "t", None, None, None)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = open_store(tmp_path / "atlas.db", 5)
    s.sync_sources([src(f"s{i}") for i in range(6)], [f"s{i}" for i in range(6)], NOW)
    return s


def leases(store: Store, holder: str) -> Leases:
    return Leases(store.conn, holder, PERIOD)


NAMES = [f"s{i}" for i in range(6)]


def test_claim_takes_due_free_sources_once_and_bumps_the_token(store: Store) -> None:
    a, b = leases(store, "a"), leases(store, "b")
    got = a.claim(NAMES, NOW, limit=4)
    assert len(got) == 4 and set(got.values()) == {1}
    rest = b.claim(NAMES, NOW, limit=10)
    assert set(rest) == set(NAMES) - set(got), "b gets only what a did not take"
    assert b.claim(NAMES, NOW, limit=10) == {}, "nothing is claimed twice"


def test_claim_skips_sources_not_due_not_named_or_disabled(store: Store) -> None:
    store.conn.execute("UPDATE sources SET next_check_at = ? WHERE name = 's0'", (NOW + 1,))
    store.conn.execute("UPDATE sources SET enabled = 0 WHERE name = 's1'")
    store.conn.execute("UPDATE sources SET removed_at = ? WHERE name = 's2'", (NOW,))
    got = leases(store, "a").claim(["s0", "s1", "s2", "s3"], NOW, limit=10)
    assert set(got) == {"s3"}


def test_an_expired_lease_is_taken_over_with_a_new_token(store: Store) -> None:
    a, b = leases(store, "a"), leases(store, "b")
    assert a.claim(["s0"], NOW, limit=1) == {"s0": 1}
    assert b.claim(["s0"], NOW + PERIOD - 0.01, limit=1) == {}, "still a's"
    assert b.claim(["s0"], NOW + PERIOD, limit=1) == {"s0": 2}
    assert a.renew({"s0": 1}, NOW + PERIOD) == {"s0"}, "a hears it lost the lease"


def test_renew_extends_only_leases_still_held(store: Store) -> None:
    a, b = leases(store, "a"), leases(store, "b")
    held = a.claim(["s0", "s1"], NOW, limit=2)
    assert a.renew(held, NOW + PERIOD * 0.9) == set()
    assert b.claim(["s0", "s1"], NOW + PERIOD * 1.5, limit=2) == {}, "renewed, so not expired"
    assert b.claim(["s0", "s1"], NOW + PERIOD * 1.9, limit=2) == {"s0": 2, "s1": 2}


def test_release_frees_a_source_for_anyone_at_once(store: Store) -> None:
    a, b = leases(store, "a"), leases(store, "b")
    held = a.claim(["s0"], NOW, limit=1)
    a.release("s0", held["s0"])
    assert b.claim(["s0"], NOW, limit=1) == {"s0": 2}
    a.release("s0", held["s0"])  # a stale release changes nothing
    assert leases(store, "c").claim(["s0"], NOW, limit=1) == {}


def result(job: Job, title: str) -> JobResult:
    return JobResult(job, "ok", NOW + 1, 0.1, items=(Item(title, "x", guid=title),))


def test_a_late_store_of_an_expired_holder_is_refused_and_changes_nothing(store: Store) -> None:
    a, b = leases(store, "a"), leases(store, "b")
    old = a.claim(["s0"], NOW, limit=1)["s0"]
    new = b.claim(["s0"], NOW + PERIOD + 1, limit=1)["s0"]
    schedule = Schedule()
    with pytest.raises(LeaseLost, match=r"s0.*token 1.*token 2"):
        store.apply(result(Job(src("s0"), lease_token=old), "late"), schedule)
    assert store.conn.execute("SELECT COUNT(*) FROM items").fetchone() == (0,)
    assert store.conn.execute("SELECT last_fetch_at FROM sources").fetchone() == (None,)
    store.apply(result(Job(src("s0"), lease_token=new), "fresh"), schedule)
    assert store.conn.execute("SELECT title FROM items").fetchall() == [("fresh",)]
    row = store.conn.execute("SELECT holder, token FROM source_leases WHERE source = 's0'")
    assert row.fetchone() == (None, new), "storing releases the lease, keeping its token"


def test_a_late_store_after_the_lease_was_released_and_retaken_is_refused(store: Store) -> None:
    a = leases(store, "a")
    first = a.claim(["s0"], NOW, limit=1)["s0"]
    a.release("s0", first)
    a.claim(["s0"], NOW, limit=1)
    with pytest.raises(LeaseLost):
        store.apply(result(Job(src("s0"), lease_token=first), "late"), Schedule())


def test_concurrent_claimers_on_separate_connections_never_share_a_source(
    tmp_path: Path,
) -> None:
    db = tmp_path / "many.db"
    names = [f"n{i}" for i in range(200)]
    setup = open_store(db, 5)
    setup.sync_sources([src(n) for n in names], names, NOW)
    setup.close()
    taken: dict[str, list[str]] = {}
    lock = threading.Lock()

    def claimer(holder: str) -> None:
        s = open_store(db, 10)
        mine = Leases(s.conn, holder, PERIOD)
        while got := mine.claim(names, NOW, limit=7):
            with lock:
                for name in got:
                    taken.setdefault(name, []).append(holder)
        s.close()

    threads = [threading.Thread(target=claimer, args=(f"h{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(taken) == sorted(names)
    assert all(len(holders) == 1 for holders in taken.values())


def test_a_retry_by_hand_leaves_a_source_a_replica_is_fetching_alone(tmp_path: Path) -> None:
    from atlas.core import settings as core_settings
    from atlas.core.oneshot import fetch_now
    from tests.support.feeds import core_config, source

    db = tmp_path / "atlas.db"
    cfg = core_config(db, [source("motd", "text", text="hello")])
    settings = core_settings.from_dict(cfg, tmp_path / "core.json")
    store = open_store(db, 5)
    store.sync_sources(settings.sources, ["motd"], NOW)
    now = time.time()  # fetch_now runs on the real clock
    held = leases(store, "host/core@1/99").claim(["motd"], now, limit=1)
    [busy] = fetch_now(settings, store, ["motd"])
    assert (busy.ok, busy.status) == (False, "leased")
    assert "host/core@1/99" in busy.message
    assert store.conn.execute("SELECT COUNT(*) FROM items").fetchone() == (0,)
    leases(store, "host/core@1/99").release("motd", held["motd"])
    [done] = fetch_now(settings, store, ["motd"])
    assert (done.ok, done.status, done.new) == (True, "ok", 1)
    row = store.conn.execute("SELECT holder, token FROM source_leases").fetchone()
    assert row == (None, 2), "the retry held the lease while it fetched, then released it"
