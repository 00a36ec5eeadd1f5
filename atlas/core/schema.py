"""Schema of the content database (``database.path`` in every component's config).

Shared by the worker (which migrates it), the API (which only checks it is
current: a new API beside an old worker reports not-ready instead of migrating
under it) and the background jobs.

* ``sources``  — one row per configured source: conditional-GET validators,
  schedule, last fetch, consecutive errors. Rows of sources gone from the config
  stay (with ``removed_at``) so their items keep a home.
* ``items``    — deduplicated per source by ``dedupe_key`` ("guid:…", "url:…" or
  "hash:…"); ``ts`` is the item's time (published, else first seen).
* ``items_fts``— FTS5 over title and text, kept in step by triggers; words are
  stemmed (porter) over unicode61 with diacritics removed (migration 2), so
  "operations" finds "Operating" and "cafe" finds "Café".
* ``hosts``    — the circuit breaker of each host, shared by the replicas (migration 3
  adds the breaker's counters: ``atlas.resilience.shared``).
* ``host_rates`` — each host's adaptive rate and token bucket, shared likewise.
* ``source_leases`` — who fetches a source now, until when, and the fencing token
  of that claim (``atlas.core.leases``).
* ``dead_letters`` — fetches that still failed after their retries, one open
  entry per source (see ``atlas.resilience.dlq``).
"""

from __future__ import annotations

from atlas.db import Migration

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "sources, items, full-text search, hosts, dead letters",
        """
        CREATE TABLE sources (
            name TEXT PRIMARY KEY,
            type TEXT NOT NULL,
            title TEXT,
            url TEXT,
            host TEXT,
            enabled INTEGER NOT NULL DEFAULT 1,
            interval_s REAL NOT NULL,
            etag TEXT,
            last_modified TEXT,
            body_sha256 TEXT,
            last_fetch_at REAL,
            last_success_at REAL,
            last_status INTEGER,
            last_error TEXT,
            consecutive_errors INTEGER NOT NULL DEFAULT 0,
            next_check_at REAL NOT NULL DEFAULT 0,
            removed_at REAL
        );
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            dedupe_key TEXT NOT NULL,
            guid TEXT,
            url TEXT,
            title TEXT NOT NULL DEFAULT '',
            text TEXT NOT NULL DEFAULT '',
            author TEXT,
            published_at REAL,
            ts REAL NOT NULL,
            first_seen_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            content_hash TEXT NOT NULL,
            UNIQUE (source, dedupe_key)
        );
        CREATE INDEX items_by_time ON items (ts DESC, id DESC);
        CREATE INDEX items_by_source_time ON items (source, ts DESC, id DESC);
        CREATE VIRTUAL TABLE items_fts USING fts5(
            title, text, content='items', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
            INSERT INTO items_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
        END;
        CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
            INSERT INTO items_fts (items_fts, rowid, title, text)
            VALUES ('delete', old.id, old.title, old.text);
        END;
        CREATE TRIGGER items_fts_update AFTER UPDATE OF title, text ON items BEGIN
            INSERT INTO items_fts (items_fts, rowid, title, text)
            VALUES ('delete', old.id, old.title, old.text);
            INSERT INTO items_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
        END;
        CREATE TABLE hosts (
            host TEXT PRIMARY KEY,
            circuit TEXT NOT NULL,
            updated_at REAL NOT NULL
        );
        CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL UNIQUE,
            url TEXT,
            error_kind TEXT NOT NULL,
            error TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            first_failed_at REAL NOT NULL,
            last_failed_at REAL NOT NULL,
            next_retry_at REAL NOT NULL
        );
        """,
    ),
)

FTS_TOKENIZE = "porter unicode61 remove_diacritics 2"  # the tokenizer of migration 2

MIGRATIONS += (
    # FTS5 cannot change the tokenizer of a table: drop the index and its triggers,
    # create them again stemming, and rebuild the index from ``items``.
    Migration(
        2,
        "full-text search stems words (porter over unicode61, diacritics removed)",
        """
        DROP TRIGGER IF EXISTS items_fts_insert;
        DROP TRIGGER IF EXISTS items_fts_delete;
        DROP TRIGGER IF EXISTS items_fts_update;
        DROP TABLE IF EXISTS items_fts;
        CREATE VIRTUAL TABLE items_fts USING fts5(
            title, text, content='items', content_rowid='id',
            tokenize='porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
            INSERT INTO items_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
        END;
        CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
            INSERT INTO items_fts (items_fts, rowid, title, text)
            VALUES ('delete', old.id, old.title, old.text);
        END;
        CREATE TRIGGER items_fts_update AFTER UPDATE OF title, text ON items BEGIN
            INSERT INTO items_fts (items_fts, rowid, title, text)
            VALUES ('delete', old.id, old.title, old.text);
            INSERT INTO items_fts (rowid, title, text) VALUES (new.id, new.title, new.text);
        END;
        INSERT INTO items_fts (items_fts) VALUES ('rebuild');
        """,
    ),
)

MIGRATIONS += (
    Migration(
        3,
        "source leases; circuit breakers and rate limits shared by the replicas",
        """
        CREATE TABLE source_leases (
            source TEXT PRIMARY KEY,
            holder TEXT,
            token INTEGER NOT NULL DEFAULT 0,
            expires_at REAL NOT NULL DEFAULT 0,
            claimed_at REAL
        );
        INSERT INTO source_leases (source) SELECT name FROM sources;
        CREATE INDEX sources_by_next_check ON sources (next_check_at);
        ALTER TABLE hosts ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE hosts ADD COLUMN opened_at REAL NOT NULL DEFAULT 0;
        ALTER TABLE hosts ADD COLUMN open_for REAL;
        ALTER TABLE hosts ADD COLUMN trials INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE hosts ADD COLUMN trial_at REAL NOT NULL DEFAULT 0;
        CREATE TABLE host_rates (
            host TEXT PRIMARY KEY,
            rate REAL NOT NULL,
            tokens REAL NOT NULL,
            stamp REAL NOT NULL
        );
        """,
    ),
)

LATEST = max(m.version for m in MIGRATIONS)
