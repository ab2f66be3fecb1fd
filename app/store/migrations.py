"""Versioned schema migrations for both databases.

Each migration is (version, description, {dialect: [statements]}). They are applied in
order on start, each in its own transaction, and recorded in ``schema_migrations``;
PostgreSQL takes an advisory lock first so replicas starting together migrate once.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from app.store.dialect import POSTGRES, SQLITE

MIGRATIONS: list[tuple[int, str, dict[str, list[str]]]] = [
    (
        1,
        "events (with their steps), attempts, oauth token, limiter",
        {
            "sqlite": [
                """CREATE TABLE events (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    id TEXT NOT NULL UNIQUE,
                    source TEXT NOT NULL,
                    event_type TEXT,
                    external_id TEXT,
                    dedupe_key TEXT NOT NULL,
                    status TEXT NOT NULL,
                    received_at REAL NOT NULL,
                    contact_email TEXT,
                    contact_key TEXT,
                    contact_id INTEGER,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at REAL,
                    first_failure_at REAL,
                    last_error TEXT,
                    payload TEXT NOT NULL,
                    headers TEXT NOT NULL,
                    routes TEXT NOT NULL,
                    steps TEXT NOT NULL,
                    claimed_by TEXT,
                    claim_expires_at REAL,
                    updated_at REAL NOT NULL,
                    UNIQUE (source, dedupe_key)
                )""",
                "CREATE INDEX events_due ON events (status, next_attempt_at)",
                "CREATE INDEX events_contact ON events (contact_key, status, seq)",
                "CREATE INDEX events_finished ON events (status, updated_at)",
                """CREATE TABLE attempts (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    event_id TEXT NOT NULL,
                    step_idx INTEGER,
                    started_at REAL NOT NULL,
                    duration REAL NOT NULL,
                    operation TEXT NOT NULL,
                    request TEXT NOT NULL,
                    status_code INTEGER,
                    outcome TEXT NOT NULL,
                    error TEXT
                )""",
                "CREATE INDEX attempts_event ON attempts (event_id, id)",
                """CREATE TABLE oauth_tokens (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    refresh_token TEXT NOT NULL,
                    access_token TEXT,
                    access_expires_at REAL,
                    seed_hash TEXT,
                    updated_at REAL NOT NULL
                )""",
                "CREATE TABLE rate_calls (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL)",
                "CREATE INDEX rate_calls_at ON rate_calls (at)",
                """CREATE TABLE limiter_state (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    not_before REAL NOT NULL
                )""",
                "INSERT INTO limiter_state (id, not_before) VALUES (1, 0)",
            ],
            "postgres": [
                """CREATE TABLE events (
                    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    id TEXT NOT NULL UNIQUE,
                    source TEXT NOT NULL,
                    event_type TEXT,
                    external_id TEXT,
                    dedupe_key TEXT NOT NULL,
                    status TEXT NOT NULL,
                    received_at DOUBLE PRECISION NOT NULL,
                    contact_email TEXT,
                    contact_key TEXT,
                    contact_id BIGINT,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    next_attempt_at DOUBLE PRECISION,
                    first_failure_at DOUBLE PRECISION,
                    last_error TEXT,
                    payload TEXT NOT NULL,
                    headers TEXT NOT NULL,
                    routes TEXT NOT NULL,
                    steps TEXT NOT NULL,
                    claimed_by TEXT,
                    claim_expires_at DOUBLE PRECISION,
                    updated_at DOUBLE PRECISION NOT NULL,
                    UNIQUE (source, dedupe_key)
                )""",
                "CREATE INDEX events_due ON events (status, next_attempt_at)",
                "CREATE INDEX events_contact ON events (contact_key, status, seq)",
                "CREATE INDEX events_finished ON events (status, updated_at)",
                """CREATE TABLE attempts (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    event_id TEXT NOT NULL,
                    step_idx INTEGER,
                    started_at DOUBLE PRECISION NOT NULL,
                    duration DOUBLE PRECISION NOT NULL,
                    operation TEXT NOT NULL,
                    request TEXT NOT NULL,
                    status_code INTEGER,
                    outcome TEXT NOT NULL,
                    error TEXT
                )""",
                "CREATE INDEX attempts_event ON attempts (event_id, id)",
                """CREATE TABLE oauth_tokens (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    refresh_token TEXT NOT NULL,
                    access_token TEXT,
                    access_expires_at DOUBLE PRECISION,
                    seed_hash TEXT,
                    updated_at DOUBLE PRECISION NOT NULL
                )""",
                """CREATE TABLE rate_calls (
                    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    at DOUBLE PRECISION NOT NULL
                )""",
                "CREATE INDEX rate_calls_at ON rate_calls (at)",
                """CREATE TABLE limiter_state (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    not_before DOUBLE PRECISION NOT NULL
                )""",
                "INSERT INTO limiter_state (id, not_before) VALUES (1, 0)",
            ],
        },
    ),
]

# Dashboard sessions: kept in the database so that signing out ends a session on every
# replica. Only the SHA-256 of a session id is stored: the table alone signs no one in.
_ADMIN_SESSIONS = """CREATE TABLE admin_sessions (
    id_hash TEXT PRIMARY KEY,
    created_at {real} NOT NULL,
    expires_at {real} NOT NULL
)"""
MIGRATIONS.append(
    (
        2,
        "admin sessions",
        {
            "sqlite": [
                _ADMIN_SESSIONS.format(real="REAL"),
                "CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at)",
            ],
            "postgres": [
                _ADMIN_SESSIONS.format(real="DOUBLE PRECISION"),
                "CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at)",
            ],
        },
    )
)

# What the alerts already told (app/alerts), so a restart or a second replica does not
# tell it again.
MIGRATIONS.append(
    (
        3,
        "alert_state",
        {
            dialect: [
                f"""CREATE TABLE alert_state (
                    key TEXT PRIMARY KEY,
                    value {real} NOT NULL,
                    sent_at {real} NOT NULL
                )"""
            ]
            for dialect, real in (("sqlite", "REAL"), ("postgres", "DOUBLE PRECISION"))
        },
    )
)

# Contact reuse (app.delivery.reuse) and claim priority (queries.claim_due_events).
MIGRATIONS += [
    (
        4,
        "contact reuse: the last upsert per email, shared by every replica",
        {
            # email_key and fields_key are SHA-256 digests (of the lower-case email and of
            # the upsert's mapped fields): the table holds no address or name.
            "sqlite": [
                """CREATE TABLE contact_reuse (
                    email_key TEXT PRIMARY KEY,
                    fields_key TEXT NOT NULL,
                    contact_id INTEGER NOT NULL,
                    made_at REAL NOT NULL
                )""",
                "CREATE INDEX contact_reuse_made ON contact_reuse (made_at)",
            ],
            "postgres": [
                """CREATE TABLE contact_reuse (
                    email_key TEXT PRIMARY KEY,
                    fields_key TEXT NOT NULL,
                    contact_id BIGINT NOT NULL,
                    made_at DOUBLE PRECISION NOT NULL
                )""",
                "CREATE INDEX contact_reuse_made ON contact_reuse (made_at)",
            ],
        },
    ),
    (
        5,
        "events.priority: live events (0) are claimed before bulk replays (1)",
        {
            dialect: ["ALTER TABLE events ADD COLUMN priority INTEGER NOT NULL DEFAULT 0"]
            for dialect in ("sqlite", "postgres")
        },
    ),
    (
        6,
        "failed dashboard sign-ins by client address, counted by every replica",
        {
            dialect: [
                f"""CREATE TABLE admin_sign_in_failures (
                    address TEXT NOT NULL,
                    at {real} NOT NULL
                )""",
                "CREATE INDEX admin_sign_in_failures_address "
                "ON admin_sign_in_failures (address, at)",
                "CREATE INDEX admin_sign_in_failures_at ON admin_sign_in_failures (at)",
            ]
            for dialect, real in (("sqlite", "REAL"), ("postgres", "DOUBLE PRECISION"))
        },
    ),
    (
        7,
        "rate_days: calls reserved per UTC day, so the day ceiling's check does not walk "
        "every call of the day",
        {
            # (Counted by a trigger since 8.)
            dialect: [
                f"""CREATE TABLE rate_days (
                    day {real} PRIMARY KEY,
                    calls BIGINT NOT NULL
                )"""
            ]
            for dialect, real in (("sqlite", "REAL"), ("postgres", "DOUBLE PRECISION"))
        },
    ),
    (
        8,
        "rate_days counted by a trigger on rate_calls, so every call counts, whichever "
        "replica (of whichever version) made it",
        {
            # 7's counter was kept by the limiter's own UPDATE, which replicas still on an
            # older version do not run: during a rolling upgrade their calls went
            # uncounted. The day is 00:00 UTC in whole seconds (integer division: exact,
            # as app.domain.quota.utc_day_start). Creating the trigger locks rate_calls
            # against inserts until this commits, so the recount below misses none.
            "sqlite": [
                """CREATE TRIGGER rate_calls_count AFTER INSERT ON rate_calls BEGIN
                    INSERT INTO rate_days (day, calls)
                    VALUES ((CAST(NEW.at AS INTEGER) / 86400) * 86400, 1)
                    ON CONFLICT (day) DO UPDATE SET calls = calls + 1;
                END""",
                "DELETE FROM rate_days",
                """INSERT INTO rate_days (day, calls)
                    SELECT (CAST(at AS INTEGER) / 86400) * 86400, COUNT(*)
                    FROM rate_calls GROUP BY 1""",
            ],
            "postgres": [
                """CREATE FUNCTION relay_count_rate_call() RETURNS trigger LANGUAGE plpgsql
                    SET search_path FROM CURRENT AS $$
                BEGIN
                    INSERT INTO rate_days (day, calls)
                    VALUES ((floor(NEW.at)::bigint / 86400) * 86400, 1)
                    ON CONFLICT (day) DO UPDATE SET calls = rate_days.calls + 1;
                    RETURN NULL;
                END $$""",
                """CREATE TRIGGER rate_calls_count AFTER INSERT ON rate_calls
                    FOR EACH ROW EXECUTE FUNCTION relay_count_rate_call()""",
                "DELETE FROM rate_days",
                """INSERT INTO rate_days (day, calls)
                    SELECT (floor(at)::bigint / 86400) * 86400, COUNT(*)
                    FROM rate_calls GROUP BY 1""",
            ],
        },
    ),
]

LATEST_VERSION = MIGRATIONS[-1][0]


def migrate_sqlite(conn: sqlite3.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    for version, description, statements in MIGRATIONS:
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another process may have migrated meanwhile.
            if conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
            ).fetchone():
                conn.execute("COMMIT")
                continue
            for statement in statements[SQLITE.name]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)",
                (version, description, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def migrate_postgres(conn: Any) -> None:
    """Apply the missing migrations, each in a transaction holding the migration lock, so
    replicas starting together on an empty database migrate exactly once."""
    for version, description, statements in MIGRATIONS:
        with conn.transaction():
            conn.execute(POSTGRES.migration_lock)
            # Under the lock: IF NOT EXISTS alone is not safe against a concurrent CREATE.
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                "description TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
            )
            applied = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = %s", (version,)
            ).fetchone()
            if applied:
                continue
            for statement in statements[POSTGRES.name]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) "
                "VALUES (%s, %s, %s)",
                (version, description, time.time()),
            )
