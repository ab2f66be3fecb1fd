"""The SQL of the store, written once for both databases.

Every function takes a DB-API connection already inside a transaction and the
placeholder style (``?`` for SQLite, ``%s`` for PostgreSQL); rows are accessed by name.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from app.store.base import (
    AttemptRecord,
    EventFilter,
    EventRecord,
    Inserted,
    NewEvent,
    StepRecord,
    StoredToken,
)

Conn = Any  # sqlite3.Connection or psycopg.Connection: both have .execute(sql, params)
POSTGRES = "%s"

_EVENT_COLUMNS = (
    "seq, id, source, event_type, external_id, status, received_at, contact_email, "
    "contact_id, attempts, next_attempt_at, first_failure_at, last_error, routes"
)


@lru_cache(maxsize=256)
def sql(text: str, ph: str) -> str:
    return text if ph == "?" else text.replace("?", ph)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ingest ----------------------------------------------------------------------------
_INSERT_EVENT = """INSERT INTO events (id, source, event_type, external_id, dedupe_key, status,
    received_at, contact_email, contact_key, attempts, next_attempt_at, last_error, payload,
    headers, routes, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (source, dedupe_key) DO NOTHING"""
_INSERT_STEP = """INSERT INTO steps (event_id, idx, route, action, params, status, attempts)
    VALUES (?, ?, ?, ?, ?, 'pending', 0)"""


def insert_events(conn: Conn, ph: str, events: list[NewEvent]) -> list[Inserted]:
    """Insert each event unless (source, dedupe key) is stored already; then name the first."""
    out: list[Inserted] = []
    for event in events:
        cursor = conn.execute(
            sql(_INSERT_EVENT, ph),
            (
                event.id,
                event.source,
                event.event_type,
                event.external_id,
                event.dedupe_key,
                event.status,
                event.received_at,
                event.contact_email,
                event.contact_email.lower() if event.contact_email else None,
                event.received_at if event.status == "pending" else None,
                event.last_error,
                _dumps(event.payload),
                _dumps(event.headers),
                _dumps(event.routes),
                event.received_at,
            ),
        )
        if cursor.rowcount == 1:
            for idx, step in enumerate(event.steps):
                conn.execute(
                    sql(_INSERT_STEP, ph),
                    (event.id, idx, step.route, step.action, _dumps(step.params)),
                )
            out.append(Inserted(event.id, True))
        else:
            row = conn.execute(
                sql("SELECT id FROM events WHERE source = ? AND dedupe_key = ?", ph),
                (event.source, event.dedupe_key),
            ).fetchone()
            out.append(Inserted(row["id"], False))
    return out


# delivery --------------------------------------------------------------------------
_DUE = """SELECT e.id FROM events e
    WHERE e.status = 'pending' AND e.next_attempt_at <= ?
      AND (e.claim_expires_at IS NULL OR e.claim_expires_at < ?)
      AND NOT EXISTS (
        SELECT 1 FROM events p
        WHERE p.contact_key = e.contact_key AND p.status = 'pending' AND p.seq < e.seq)
    ORDER BY e.next_attempt_at, e.seq
    LIMIT ?"""


def claim_due_events(
    conn: Conn, ph: str, worker_id: str, now: float, lease: float, limit: int
) -> list[EventRecord]:
    """Claim up to ``limit`` due events; an event waits while an earlier one of its
    contact is pending, so one contact's events are delivered in the order received."""
    due = _DUE + (" FOR UPDATE OF e SKIP LOCKED" if ph == POSTGRES else "")
    ids = [row["id"] for row in conn.execute(sql(due, ph), (now, now, limit)).fetchall()]
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    conn.execute(
        sql(f"UPDATE events SET claimed_by = ?, claim_expires_at = ? WHERE id IN ({marks})", ph),
        (worker_id, now + lease, *ids),
    )
    records = _load_events(conn, ph, ids, with_payload=True)
    order = {event_id: i for i, event_id in enumerate(ids)}
    return sorted(records, key=lambda r: order[r.id])


def renew_claims(conn: Conn, ph: str, worker_id: str, event_ids: list[str], until: float) -> None:
    marks = ", ".join("?" for _ in event_ids)
    conn.execute(
        sql(
            f"UPDATE events SET claim_expires_at = ? WHERE claimed_by = ? AND id IN ({marks})",
            ph,
        ),
        (until, worker_id, *event_ids),
    )


def _holds_claim(conn: Conn, ph: str, event_id: str, worker_id: str) -> bool:
    row = conn.execute(
        sql("SELECT 1 FROM events WHERE id = ? AND claimed_by = ? AND status = 'pending'", ph),
        (event_id, worker_id),
    ).fetchone()
    return row is not None


def complete_step(
    conn: Conn,
    ph: str,
    event_id: str,
    idx: int,
    worker_id: str,
    result: Any,
    contact_id: int | None,
) -> bool:
    if not _holds_claim(conn, ph, event_id, worker_id):
        return False
    conn.execute(
        sql(
            "UPDATE steps SET status = 'done', attempts = attempts + 1, result = ?, "
            "last_error = NULL WHERE event_id = ? AND idx = ?",
            ph,
        ),
        (_dumps(result), event_id, idx),
    )
    if contact_id is not None:
        conn.execute(
            sql("UPDATE events SET contact_id = COALESCE(contact_id, ?) WHERE id = ?", ph),
            (contact_id, event_id),
        )
    return True


def fail_step(
    conn: Conn,
    ph: str,
    event_id: str,
    idx: int,
    worker_id: str,
    error: str,
    dead: bool,
    next_attempt_at: float | None,
    now: float,
) -> bool:
    if not _holds_claim(conn, ph, event_id, worker_id):
        return False
    conn.execute(
        sql(
            "UPDATE steps SET status = ?, attempts = attempts + 1, last_error = ? "
            "WHERE event_id = ? AND idx = ?",
            ph,
        ),
        ("failed" if dead else "pending", error, event_id, idx),
    )
    conn.execute(
        sql(
            "UPDATE events SET status = ?, attempts = attempts + 1, last_error = ?, "
            "first_failure_at = COALESCE(first_failure_at, ?), next_attempt_at = ?, "
            "claimed_by = NULL, claim_expires_at = NULL, updated_at = ? WHERE id = ?",
            ph,
        ),
        (
            "dead" if dead else "pending",
            error,
            now,
            None if dead else next_attempt_at,
            now,
            event_id,
        ),
    )
    return True


def finish_event(conn: Conn, ph: str, event_id: str, worker_id: str, now: float) -> bool:
    cursor = conn.execute(
        sql(
            "UPDATE events SET status = 'delivered', attempts = attempts + 1, last_error = NULL, "
            "next_attempt_at = NULL, claimed_by = NULL, claim_expires_at = NULL, updated_at = ? "
            "WHERE id = ? AND claimed_by = ? AND status = 'pending'",
            ph,
        ),
        (now, event_id, worker_id),
    )
    return bool(cursor.rowcount == 1)


def release_claim(
    conn: Conn, ph: str, event_id: str, worker_id: str, next_attempt_at: float
) -> None:
    conn.execute(
        sql(
            "UPDATE events SET claimed_by = NULL, claim_expires_at = NULL, next_attempt_at = ? "
            "WHERE id = ? AND claimed_by = ?",
            ph,
        ),
        (next_attempt_at, event_id, worker_id),
    )


def record_attempts(conn: Conn, ph: str, attempts: list[AttemptRecord]) -> None:
    statement = sql(
        "INSERT INTO attempts (event_id, step_idx, started_at, duration, operation, request, "
        "status_code, outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ph,
    )
    for a in attempts:
        conn.execute(
            statement,
            (
                a.event_id,
                a.step_idx,
                a.started_at,
                a.duration,
                a.operation,
                a.request,
                a.status_code,
                a.outcome,
                a.error,
            ),
        )


def next_due_at(conn: Conn, ph: str) -> float | None:
    row = conn.execute(
        "SELECT MIN(COALESCE(claim_expires_at, next_attempt_at)) AS due FROM events "
        "WHERE status = 'pending'"
    ).fetchone()
    return None if row is None or row["due"] is None else float(row["due"])


# limiter ---------------------------------------------------------------------------
def reserve_call(conn: Conn, ph: str, now: float, ceilings: list[tuple[int, float]]) -> float:
    """Reserve one call if every (limit, window) ceiling allows it; else the wait in seconds.

    A ceiling of ``limit`` calls in any sliding ``window`` is full when that many calls
    were made within the last ``window`` seconds; the next slot opens when the oldest of
    the last ``limit`` calls leaves the window.
    """
    if ph == POSTGRES:
        conn.execute("SELECT pg_advisory_xact_lock(727274)")  # one limiter for all replicas
    row = conn.execute("SELECT not_before FROM limiter_state WHERE id = 1").fetchone()
    wait = max(0.0, float(row["not_before"]) - now)
    for limit, window in ceilings:
        oldest = conn.execute(
            sql("SELECT at FROM rate_calls WHERE at > ? ORDER BY at DESC LIMIT 1 OFFSET ?", ph),
            (now - window, limit - 1),
        ).fetchone()
        if oldest is not None:
            wait = max(wait, float(oldest["at"]) + window - now)
    if wait > 0:
        return wait
    conn.execute(sql("INSERT INTO rate_calls (at) VALUES (?)", ph), (now,))
    longest = max(window for _, window in ceilings)
    if int(now * 1000) % 97 == 0:  # prune now and then, not on every call
        conn.execute(sql("DELETE FROM rate_calls WHERE at < ?", ph), (now - longest - 1,))
    return 0.0


def set_not_before(conn: Conn, ph: str, until: float) -> None:
    conn.execute(
        sql("UPDATE limiter_state SET not_before = ? WHERE id = 1 AND not_before < ?", ph),
        (until, until),
    )


# oauth -----------------------------------------------------------------------------
def load_oauth_token(conn: Conn, ph: str) -> StoredToken | None:
    row = conn.execute(
        "SELECT refresh_token, access_token, access_expires_at, seed_hash FROM oauth_tokens "
        "WHERE id = 1"
    ).fetchone()
    if row is None:
        return None
    return StoredToken(
        row["refresh_token"], row["access_token"], row["access_expires_at"], row["seed_hash"]
    )


def save_oauth_token(
    conn: Conn, ph: str, token: StoredToken, previous: str | None, now: float
) -> bool:
    """Compare-and-swap: write only if the stored refresh token is still ``previous``."""
    values = (
        token.refresh_token,
        token.access_token,
        token.access_expires_at,
        token.seed_hash,
        now,
    )
    if previous is None:
        cursor = conn.execute(
            sql(
                "INSERT INTO oauth_tokens (id, refresh_token, access_token, access_expires_at, "
                "seed_hash, updated_at) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
                ph,
            ),
            values,
        )
    else:
        cursor = conn.execute(
            sql(
                "UPDATE oauth_tokens SET refresh_token = ?, access_token = ?, "
                "access_expires_at = ?, seed_hash = ?, updated_at = ? "
                "WHERE id = 1 AND refresh_token = ?",
                ph,
            ),
            (*values, previous),
        )
    return bool(cursor.rowcount == 1)


# operator --------------------------------------------------------------------------
def _filter_clause(flt: EventFilter) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if flt.status:
        clauses.append("status = ?")
        params.append(flt.status)
    if flt.source:
        clauses.append("source = ?")
        params.append(flt.source)
    if flt.email:
        clauses.append("contact_key = ?")
        params.append(flt.email.lower())
    if flt.since is not None:
        clauses.append("received_at >= ?")
        params.append(flt.since)
    return (" AND ".join(clauses) or "1 = 1"), params


def list_events(
    conn: Conn, ph: str, flt: EventFilter, limit: int, before_seq: int | None
) -> list[EventRecord]:
    where, params = _filter_clause(flt)
    if before_seq is not None:
        where += " AND seq < ?"
        params.append(before_seq)
    rows = conn.execute(
        sql(f"SELECT id FROM events WHERE {where} ORDER BY seq DESC LIMIT ?", ph),
        (*params, limit),
    ).fetchall()
    ids = [row["id"] for row in rows]
    records = _load_events(conn, ph, ids, with_payload=False)
    return sorted(records, key=lambda r: r.seq, reverse=True)


def get_event(conn: Conn, ph: str, event_id: str) -> EventRecord | None:
    records = _load_events(conn, ph, [event_id], with_payload=True)
    if not records:
        return None
    record = records[0]
    rows = conn.execute(
        sql(
            "SELECT event_id, step_idx, started_at, duration, operation, request, status_code, "
            "outcome, error FROM attempts WHERE event_id = ? ORDER BY id",
            ph,
        ),
        (event_id,),
    ).fetchall()
    record.history = [
        AttemptRecord(
            r["event_id"],
            r["step_idx"],
            r["started_at"],
            r["duration"],
            r["operation"],
            r["request"],
            r["status_code"],
            r["outcome"],
            r["error"],
        )
        for r in rows
    ]
    return record


def _load_events(conn: Conn, ph: str, ids: list[str], *, with_payload: bool) -> list[EventRecord]:
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    extra = ", payload, headers" if with_payload else ""
    rows = conn.execute(
        sql(f"SELECT {_EVENT_COLUMNS}{extra} FROM events WHERE id IN ({marks})", ph), ids
    ).fetchall()
    records = {row["id"]: _event_from_row(row, with_payload) for row in rows}
    step_rows = conn.execute(
        sql(
            "SELECT event_id, idx, route, action, params, status, attempts, last_error, result "
            f"FROM steps WHERE event_id IN ({marks}) ORDER BY event_id, idx",
            ph,
        ),
        ids,
    ).fetchall()
    for r in step_rows:
        records[r["event_id"]].steps.append(
            StepRecord(
                r["idx"],
                r["route"],
                r["action"],
                json.loads(r["params"]),
                r["status"],
                r["attempts"],
                r["last_error"],
                json.loads(r["result"]) if r["result"] is not None else None,
            )
        )
    return list(records.values())


def _event_from_row(row: Any, with_payload: bool) -> EventRecord:
    return EventRecord(
        id=row["id"],
        seq=row["seq"],
        source=row["source"],
        event_type=row["event_type"],
        external_id=row["external_id"],
        status=row["status"],
        received_at=row["received_at"],
        contact_email=row["contact_email"],
        contact_id=row["contact_id"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        first_failure_at=row["first_failure_at"],
        last_error=row["last_error"],
        routes=json.loads(row["routes"]),
        payload=json.loads(row["payload"]) if with_payload else None,
        headers=json.loads(row["headers"]) if with_payload else {},
    )


def requeue(conn: Conn, ph: str, event_id: str, from_start: bool, now: float) -> bool:
    cursor = conn.execute(
        sql(
            "UPDATE events SET status = 'pending', next_attempt_at = ?, first_failure_at = NULL, "
            "claimed_by = NULL, claim_expires_at = NULL, updated_at = ? "
            "WHERE id = ? AND status <> 'ignored'",
            ph,
        ),
        (now, now, event_id),
    )
    if cursor.rowcount != 1:
        return False
    if from_start:
        conn.execute(sql("UPDATE steps SET status = 'pending' WHERE event_id = ?", ph), (event_id,))
    else:
        conn.execute(
            sql("UPDATE steps SET status = 'pending' WHERE event_id = ? AND status = 'failed'", ph),
            (event_id,),
        )
    record_attempts(
        conn,
        ph,
        [
            AttemptRecord(
                event_id,
                None,
                now,
                0.0,
                "replay",
                "from start" if from_start else "unfinished steps",
                None,
                "replay",
                None,
            )
        ],
    )
    return True


def requeue_matching(conn: Conn, ph: str, flt: EventFilter, now: float) -> int:
    where, params = _filter_clause(flt)
    rows = conn.execute(
        sql(f"SELECT id FROM events WHERE {where} AND status <> 'ignored'", ph), params
    ).fetchall()
    count = 0
    for row in rows:
        count += requeue(conn, ph, row["id"], False, now)
    return count


def count_by_status(conn: Conn, ph: str) -> dict[str, int]:
    rows = conn.execute("SELECT status, COUNT(*) AS n FROM events GROUP BY status").fetchall()
    return {row["status"]: int(row["n"]) for row in rows}


def purge_finished(conn: Conn, ph: str, before: float, batch: int) -> int:
    """Delete up to ``batch`` delivered or ignored events last touched before ``before``."""
    rows = conn.execute(
        sql(
            "SELECT id FROM events WHERE status IN ('delivered', 'ignored') AND updated_at < ? "
            "LIMIT ?",
            ph,
        ),
        (before, batch),
    ).fetchall()
    ids = [row["id"] for row in rows]
    if not ids:
        return 0
    marks = ", ".join("?" for _ in ids)
    for table, column in (("attempts", "event_id"), ("steps", "event_id"), ("events", "id")):
        conn.execute(sql(f"DELETE FROM {table} WHERE {column} IN ({marks})", ph), ids)
    return len(ids)
