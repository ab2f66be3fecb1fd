"""The SQL of the store, written once for both databases.

Every function takes a DB-API connection already inside a transaction and the
placeholder style (``?`` for SQLite, ``%s`` for PostgreSQL); rows are accessed by name.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import orjson

from app.store.base import (
    CONTACT_UPSERT,
    QUOTA_RESET_MARGIN,
    UTC_DAY_WINDOW,
    AttemptRecord,
    DeadEvent,
    DeadGroup,
    EventFilter,
    EventRecord,
    Inserted,
    NewEvent,
    PlannedStep,
    Replanner,
    StepRecord,
    StoredToken,
    is_dry_run_step,
    utc_day_start,
)

Conn = Any  # sqlite3.Connection or psycopg.Connection: both have .execute(sql, params)
POSTGRES = "%s"

_EVENT_COLUMNS = (
    "seq, id, source, event_type, external_id, status, received_at, contact_email, "
    "contact_id, attempts, next_attempt_at, first_failure_at, last_error, routes, steps"
)


@lru_cache(maxsize=256)
def sql(text: str, ph: str) -> str:
    return text if ph == "?" else text.replace("?", ph)


def _dumps(value: Any) -> str:
    """Compact JSON text, UTF-8 unescaped. orjson is ~10x the standard library on the
    payload, headers and steps every webhook stores (measured: 1 µs against 11-15 µs per
    event); integers wider than 64 bits, which it refuses, go to the standard library."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# ingest ----------------------------------------------------------------------------
_INSERT_COLUMNS = """INSERT INTO events (id, source, event_type, external_id, dedupe_key,
    status, received_at, contact_email, contact_key, attempts, next_attempt_at, last_error,
    payload, headers, routes, steps, updated_at) VALUES """
_INSERT_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_CONFLICT = " ON CONFLICT (source, dedupe_key) DO NOTHING"
# Rows per INSERT statement at most: 32 x 16 values stays under SQLite's oldest limit of
# 999 variables. A batch is cut into statements of 32 rows and one of the rest, so 32 SQL
# texts serve every batch size from the drivers' statement caches.
MAX_ROWS_PER_STATEMENT = 32


def _new_step(step: PlannedStep) -> dict[str, Any]:
    return {
        "route": step.route,
        "action": step.action,
        "params": step.params,
        "status": "pending",
        "attempts": 0,
        "last_error": None,
        "result": None,
    }


EventRow = tuple[Any, ...]


def event_row(e: NewEvent) -> EventRow:
    """The values ``insert_events`` binds for one event (JSON columns serialised)."""
    return (
        e.id,
        e.source,
        e.event_type,
        e.external_id,
        e.dedupe_key,
        e.status,
        e.received_at,
        e.contact_email,
        e.contact_email.lower() if e.contact_email else None,
        e.received_at if e.status == "pending" else None,
        e.last_error,
        _dumps(e.payload),
        _dumps(e.headers),
        _dumps(e.routes),
        _dumps([_new_step(s) for s in e.steps]),
        e.received_at,
    )


@lru_cache(maxsize=2 * MAX_ROWS_PER_STATEMENT)
def _insert_sql(rows: int, ph: str) -> str:
    return sql(_INSERT_COLUMNS + ", ".join([_INSERT_ROW] * rows) + _INSERT_CONFLICT, ph)


def insert_rows(conn: Conn, ph: str, rows: list[EventRow]) -> int:
    """One INSERT of up to MAX_ROWS_PER_STATEMENT rows (stored keys skipped); the number
    of rows inserted."""
    cursor = conn.execute(_insert_sql(len(rows), ph), [v for row in rows for v in row])
    return int(cursor.rowcount)


def insert_events(
    conn: Conn, ph: str, events: list[NewEvent], rows: list[EventRow] | None = None
) -> list[Inserted]:
    """Insert each event unless (source, dedupe key) is stored already; then name the first.

    Multi-row statements (a batch of 16 is one statement, one step of the database: on
    SQLite, one release of the GIL instead of one per row). When every row was inserted,
    every event was created; otherwise one look-up tells which, by whether the id stored
    under its dedupe key is its own. ``rows`` may carry ``event_row`` of each event,
    serialised before the transaction.
    """
    if rows is None:
        rows = [event_row(e) for e in events]
    inserted = 0
    for start in range(0, len(rows), MAX_ROWS_PER_STATEMENT):
        inserted += insert_rows(conn, ph, rows[start : start + MAX_ROWS_PER_STATEMENT])
    if inserted == len(events):
        return [Inserted(e.id, created=True) for e in events]
    by_source: dict[str, set[str]] = {}
    for e in events:
        by_source.setdefault(e.source, set()).add(e.dedupe_key)
    stored: dict[tuple[str, str], str] = {}
    for source, keys in by_source.items():  # (source, dedupe_key) is the unique index
        marks = ", ".join("?" for _ in keys)
        found = conn.execute(
            sql(
                f"SELECT id, dedupe_key FROM events WHERE source = ? AND dedupe_key IN ({marks})",
                ph,
            ),
            (source, *keys),
        ).fetchall()
        stored.update(((source, row["dedupe_key"]), row["id"]) for row in found)
    out = []
    for e in events:
        first = stored[(e.source, e.dedupe_key)]
        out.append(Inserted(first, created=first == e.id))
    return out


# delivery --------------------------------------------------------------------------
_DUE = """SELECT e.id FROM events e
    WHERE e.status = 'pending' AND e.next_attempt_at <= ?
      AND (e.claim_expires_at IS NULL OR e.claim_expires_at < ?)
      AND NOT EXISTS (
        SELECT 1 FROM events p
        WHERE p.contact_key = e.contact_key AND p.status = 'pending' AND p.seq < e.seq)
    ORDER BY CASE WHEN e.priority = 0 OR EXISTS (
        SELECT 1 FROM events l
        WHERE l.contact_key = e.contact_key AND l.status = 'pending' AND l.priority = 0
          AND l.seq > e.seq) THEN 0 ELSE 1 END,
      e.next_attempt_at, e.seq
    LIMIT ?"""


def claim_due_events(
    conn: Conn, ph: str, worker_id: str, now: float, lease: float, limit: int
) -> list[EventRecord]:
    """Claim up to ``limit`` due events; an event waits while an earlier one of its
    contact is pending, so one contact's events are delivered in the order received.

    Live events (priority 0) go before those a bulk replay queued (priority 1), so a
    replay of thousands cannot starve new orders; a replayed event that holds back a live
    event of its contact goes with the live ones."""
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
    """Whether the worker still holds the event's claim — on PostgreSQL with the row locked
    until commit, so a claim taken over meanwhile cannot slip between this check and the
    write after it (READ COMMITTED would otherwise let both workers write)."""
    check = "SELECT 1 FROM events WHERE id = ? AND claimed_by = ? AND status = 'pending'"
    row = conn.execute(
        sql(check + (" FOR UPDATE" if ph == POSTGRES else ""), ph), (event_id, worker_id)
    ).fetchone()
    return row is not None


def _load_steps(conn: Conn, ph: str, event_id: str) -> list[dict[str, Any]]:
    row = conn.execute(sql("SELECT steps FROM events WHERE id = ?", ph), (event_id,)).fetchone()
    steps: list[dict[str, Any]] = json.loads(row["steps"]) if row else []
    return steps


def complete_step(
    conn: Conn,
    ph: str,
    event_id: str,
    idx: int,
    worker_id: str,
    result: Any,
    contact_id: int | None,
    replaces: int | None = None,
) -> bool:
    """The event's contact id is the first upsert's; ``replaces``: a contact id that, if
    it is the event's, gives way to ``contact_id`` (the contact was upserted again)."""
    if not _holds_claim(conn, ph, event_id, worker_id):
        return False
    steps = _load_steps(conn, ph, event_id)
    steps[idx].update(
        status="done", attempts=steps[idx]["attempts"] + 1, result=result, last_error=None
    )
    conn.execute(
        sql(
            "UPDATE events SET steps = ?, contact_id = CASE WHEN contact_id = ? THEN ? "
            "ELSE COALESCE(contact_id, ?) END WHERE id = ?",
            ph,
        ),
        (_dumps(steps), replaces, contact_id, contact_id, event_id),
    )
    return True


def mark_step_sending(conn: Conn, ph: str, event_id: str, idx: int, worker_id: str) -> bool:
    """Record, before a call that must not run twice, that it is being sent."""
    if not _holds_claim(conn, ph, event_id, worker_id):
        return False
    steps = _load_steps(conn, ph, event_id)
    steps[idx]["status"] = "sending"
    conn.execute(sql("UPDATE events SET steps = ? WHERE id = ?", ph), (_dumps(steps), event_id))
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
    steps = _load_steps(conn, ph, event_id)
    steps[idx].update(
        status="failed" if dead else "pending",
        attempts=steps[idx]["attempts"] + 1,
        last_error=error,
    )
    conn.execute(
        sql(
            "UPDATE events SET status = ?, attempts = attempts + 1, last_error = ?, steps = ?, "
            "first_failure_at = COALESCE(first_failure_at, ?), next_attempt_at = ?, "
            "claimed_by = NULL, claim_expires_at = NULL, updated_at = ? WHERE id = ?",
            ph,
        ),
        (
            "dead" if dead else "pending",
            error,
            _dumps(steps),
            now,
            None if dead else next_attempt_at,
            now,
            event_id,
        ),
    )
    return True


def give_up_step(conn: Conn, ph: str, event_id: str, idx: int, worker_id: str, error: str) -> bool:
    """Record a step as failed for good while the event goes on with its other steps (it
    ends ``dead`` with this reason: see ``finish_event``)."""
    if not _holds_claim(conn, ph, event_id, worker_id):
        return False
    steps = _load_steps(conn, ph, event_id)
    steps[idx].update(status="failed", attempts=steps[idx]["attempts"] + 1, last_error=error)
    conn.execute(
        sql("UPDATE events SET steps = ?, last_error = ? WHERE id = ?", ph),
        (_dumps(steps), error, event_id),
    )
    return True


def finish_event(
    conn: Conn, ph: str, event_id: str, worker_id: str, now: float, dead_reason: str | None
) -> bool:
    """Every step has run: ``delivered``, or ``dead`` with ``dead_reason`` when a step was
    given up on the way."""
    cursor = conn.execute(
        sql(
            "UPDATE events SET status = ?, attempts = attempts + 1, last_error = ?, "
            "next_attempt_at = NULL, claimed_by = NULL, claim_expires_at = NULL, updated_at = ? "
            "WHERE id = ? AND claimed_by = ? AND status = 'pending'",
            ph,
        ),
        ("dead" if dead_reason else "delivered", dead_reason, now, event_id, worker_id),
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


# limiter ---------------------------------------------------------------------------
def reserve_call(conn: Conn, ph: str, now: float, ceilings: list[tuple[int, float]]) -> float:
    """Reserve one call if every (limit, window) ceiling allows it; else the wait in seconds.

    A ceiling of ``limit`` calls in any sliding ``window`` is full when that many calls
    were made within the last ``window`` seconds; the next slot opens when the oldest of
    the last ``limit`` calls leaves the window. A UTC_DAY_WINDOW ceiling counts the
    calls since 00:00 UTC and, once full, opens at the next 00:00 UTC (Keap's reset).
    """
    if ph == POSTGRES:
        conn.execute("SELECT pg_advisory_xact_lock(727274)")  # one limiter for all replicas
    row = conn.execute("SELECT not_before FROM limiter_state WHERE id = 1").fetchone()
    wait = max(0.0, float(row["not_before"]) - now)
    for limit, window in ceilings:
        day = window == UTC_DAY_WINDOW
        since = utc_day_start(now) if day else now - window
        oldest = conn.execute(
            sql("SELECT at FROM rate_calls WHERE at > ? ORDER BY at DESC LIMIT 1 OFFSET ?", ph),
            (since, limit - 1),
        ).fetchone()
        if oldest is None:
            continue
        if day:  # the day's quota is spent: nothing until it resets
            wait = max(wait, since + UTC_DAY_WINDOW + QUOTA_RESET_MARGIN - now)
        else:
            wait = max(wait, float(oldest["at"]) + window - now)
    if wait > 0:
        return wait
    conn.execute(sql("INSERT INTO rate_calls (at) VALUES (?)", ph), (now,))
    longest = max(window for _, window in ceilings)
    if int(now * 1000) % 97 == 0:  # prune now and then, not on every call
        conn.execute(sql("DELETE FROM rate_calls WHERE at < ?", ph), (now - longest - 1,))
    return 0.0


def calls_since(conn: Conn, ph: str, moments: list[float]) -> list[int]:
    """How many calls were let through since each of ``moments`` (the quota budget)."""
    return [
        int(
            conn.execute(
                sql("SELECT COUNT(*) AS n FROM rate_calls WHERE at > ?", ph), (moment,)
            ).fetchone()["n"]
        )
        for moment in moments
    ]


def set_not_before(conn: Conn, ph: str, until: float) -> None:
    conn.execute(
        sql("UPDATE limiter_state SET not_before = ? WHERE id = 1 AND not_before < ?", ph),
        (until, until),
    )


# contact reuse ---------------------------------------------------------------------
def reused_contact(
    conn: Conn, ph: str, email_key: str, fields_key: str, since: float
) -> int | None:
    """The contact id of the last upsert for this email, if it was made since ``since``
    with these very fields."""
    row = conn.execute(
        sql(
            "SELECT contact_id FROM contact_reuse "
            "WHERE email_key = ? AND fields_key = ? AND made_at >= ?",
            ph,
        ),
        (email_key, fields_key, since),
    ).fetchone()
    return int(row["contact_id"]) if row is not None else None


def remember_contact(
    conn: Conn, ph: str, email_key: str, fields_key: str, contact_id: int, now: float, keep: float
) -> None:
    """Record the last upsert for this email (replacing any before it); entries older than
    ``keep`` seconds are pruned now and then."""
    conn.execute(
        sql(
            "INSERT INTO contact_reuse (email_key, fields_key, contact_id, made_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (email_key) DO UPDATE SET "
            "fields_key = excluded.fields_key, contact_id = excluded.contact_id, "
            "made_at = excluded.made_at",
            ph,
        ),
        (email_key, fields_key, contact_id, now),
    )
    if int(now * 1000) % 53 == 0:  # prune now and then, not on every upsert
        conn.execute(sql("DELETE FROM contact_reuse WHERE made_at < ?", ph), (now - keep,))


def forget_contact(conn: Conn, ph: str, email_key: str, contact_id: int) -> None:
    """Drop the entry for this email if it still names ``contact_id``."""
    conn.execute(
        sql("DELETE FROM contact_reuse WHERE email_key = ? AND contact_id = ?", ph),
        (email_key, contact_id),
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


# admin sessions --------------------------------------------------------------------
def create_admin_session(conn: Conn, ph: str, id_hash: str, now: float, expires_at: float) -> None:
    conn.execute(sql("DELETE FROM admin_sessions WHERE expires_at < ?", ph), (now,))
    conn.execute(
        sql("INSERT INTO admin_sessions (id_hash, created_at, expires_at) VALUES (?, ?, ?)", ph),
        (id_hash, now, expires_at),
    )


def admin_session_active(conn: Conn, ph: str, id_hash: str, now: float) -> bool:
    row = conn.execute(
        sql("SELECT 1 FROM admin_sessions WHERE id_hash = ? AND expires_at > ?", ph),
        (id_hash, now),
    ).fetchone()
    return row is not None


def revoke_admin_session(conn: Conn, ph: str, id_hash: str) -> None:
    conn.execute(sql("DELETE FROM admin_sessions WHERE id_hash = ?", ph), (id_hash,))


# operator --------------------------------------------------------------------------
def event_payload_text(conn: Conn, ph: str, event_id: str) -> str | None:
    """The payload exactly as stored (JSON text), without parsing it."""
    row = conn.execute(sql("SELECT payload FROM events WHERE id = ?", ph), (event_id,)).fetchone()
    return None if row is None else str(row["payload"])


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
    if flt.reason is not None:
        clauses.append("last_error = ?")
        params.append(flt.reason)
    if flt.routes_json is not None:
        clauses.append("routes = ?")
        params.append(flt.routes_json)
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
    return [_event_from_row(row, with_payload) for row in rows]


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
        steps=[
            StepRecord(
                idx,
                s["route"],
                s["action"],
                s["params"],
                s["status"],
                s["attempts"],
                s["last_error"],
                s["result"],
            )
            for idx, s in enumerate(json.loads(row["steps"]))
        ],
    )


def requeue(
    conn: Conn,
    ph: str,
    event_id: str,
    from_start: bool,
    now: float,
    dry_run_steps: bool = False,
    replan: Replanner | None = None,
    bulk: bool = False,
) -> bool:
    """Make the event pending again with its unfinished steps to run: also every step
    (``from_start``), or the steps only recorded in dry-run (``dry_run_steps``); with
    ``replan``, under the plan it returns, keeping the state of the steps it carries over.

    A ``bulk`` replay's events are claimed after live ones (priority 1); a replay of one
    event is an operator waiting for it (priority 0).

    False when the event is missing or ignored, when ``replan`` finds nothing to deliver,
    or — for a replan or dry-run replay, which rewrite steps — while a worker holds it.
    """
    lock = " FOR UPDATE" if ph == POSTGRES else ""
    row = conn.execute(
        sql("SELECT status, claimed_by, claim_expires_at FROM events WHERE id = ?" + lock, ph),
        (event_id,),
    ).fetchone()
    if row is None or row["status"] == "ignored":
        return False
    rewrites = dry_run_steps or replan is not None
    if rewrites and row["claimed_by"] is not None and (row["claim_expires_at"] or 0) >= now:
        return False  # being delivered right now: its steps are the worker's
    record = _load_events(conn, ph, [event_id], with_payload=replan is not None)[0]
    for step in record.steps:
        if dry_run_steps and is_dry_run_step(step.status, step.result):
            step.status, step.result = "pending", None
        elif from_start or step.status == "failed":
            step.status = "pending"
    routes, email = record.routes, record.contact_email
    if replan is not None:
        replanned = replan(record)
        if replanned is None:
            return False
        routes, email, record.steps = replanned.routes, replanned.contact_email, replanned.steps
    conn.execute(
        sql(
            "UPDATE events SET status = 'pending', next_attempt_at = ?, first_failure_at = NULL, "
            "claimed_by = NULL, claim_expires_at = NULL, updated_at = ?, steps = ?, routes = ?, "
            "contact_email = ?, contact_key = ?, contact_id = ?, priority = ? WHERE id = ?",
            ph,
        ),
        (
            now,
            now,
            _dumps([_step_json(step) for step in record.steps]),
            _dumps(routes),
            email,
            email.lower() if email else None,
            _known_contact_id(record.steps),
            1 if bulk else 0,
            event_id,
        ),
    )
    how = "from start" if from_start else "unfinished steps"
    if dry_run_steps:
        how += " and steps recorded in dry-run"
    if replan is not None:
        how += ", re-planned with the current relay.yaml"
    record_attempts(
        conn, ph, [AttemptRecord(event_id, None, now, 0.0, "replay", how, None, "replay", None)]
    )
    return True


def _step_json(step: StepRecord) -> dict[str, Any]:
    return {
        "route": step.route,
        "action": step.action,
        "params": step.params,
        "status": step.status,
        "attempts": step.attempts,
        "last_error": step.last_error,
        "result": step.result,
    }


def _known_contact_id(steps: list[StepRecord]) -> int | None:
    """The contact id a done upsert found; None until one has run (for real, after a
    dry-run replay: the dry-run stand-in id must not stay on the event)."""
    for step in steps:
        if step.action == CONTACT_UPSERT and step.status == "done":
            contact_id = step.result.get("contact_id") if isinstance(step.result, dict) else None
            if isinstance(contact_id, int):
                return contact_id
    return None


# A bulk replay is written this many events per transaction, so that on SQLite the writer
# (which every webhook waits on) is never held for a whole replay of thousands of events.
REQUEUE_BATCH = 64


def requeue_candidates(conn: Conn, ph: str, flt: EventFilter, dry_run_steps: bool) -> list[str]:
    """The ids a bulk replay considers (with ``dry_run_steps``, only events that have a
    step recorded in dry-run), oldest first."""
    where, params = _filter_clause(flt)
    rows = conn.execute(
        sql(f"SELECT id, steps FROM events WHERE {where} AND status <> 'ignored' ORDER BY seq", ph),
        params,
    ).fetchall()
    return [
        row["id"]
        for row in rows
        if not dry_run_steps
        or any(is_dry_run_step(s["status"], s["result"]) for s in json.loads(row["steps"]))
    ]


def requeue_many(
    conn: Conn,
    ph: str,
    event_ids: list[str],
    now: float,
    from_start: bool = False,
    dry_run_steps: bool = False,
    replan: Replanner | None = None,
) -> int:
    """``requeue`` each event as a bulk replay (after live events); the number made
    pending."""
    return sum(
        requeue(conn, ph, event_id, from_start, now, dry_run_steps, replan, bulk=True)
        for event_id in event_ids
    )


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
    for table, column in (("attempts", "event_id"), ("events", "id")):
        conn.execute(sql(f"DELETE FROM {table} WHERE {column} IN ({marks})", ph), ids)
    return len(ids)


def _route_label(routes: str) -> str:
    return ", ".join(json.loads(routes)) if routes else ""


def dead_since(conn: Conn, ph: str, since: float, until: float, limit: int) -> list[DeadEvent]:
    """Events that went dead between ``since`` and ``until`` (updated_at, both included),
    oldest first: what the dead-event alerts count (index events_finished)."""
    rows = conn.execute(
        sql(
            "SELECT source, routes, last_error, updated_at FROM events WHERE status = 'dead' "
            "AND updated_at >= ? AND updated_at <= ? ORDER BY updated_at LIMIT ?",
            ph,
        ),
        (since, until, limit),
    ).fetchall()
    return [
        DeadEvent(r["source"], _route_label(r["routes"]), r["last_error"] or "", r["updated_at"])
        for r in rows
    ]


def dead_groups(conn: Conn, ph: str, limit: int) -> list[DeadGroup]:
    """Dead events by source, routes and reason, the largest groups first."""
    rows = conn.execute(
        sql(
            "SELECT source, routes, last_error, COUNT(*) AS n, MIN(updated_at) AS first_at, "
            "MAX(updated_at) AS last_at FROM events WHERE status = 'dead' "
            "GROUP BY source, routes, last_error ORDER BY n DESC, last_at DESC LIMIT ?",
            ph,
        ),
        (limit,),
    ).fetchall()
    return [
        DeadGroup(
            source=r["source"],
            route=_route_label(r["routes"]),
            reason=r["last_error"] or "",
            count=int(r["n"]),
            first_at=r["first_at"],
            last_at=r["last_at"],
            routes_json=r["routes"],
        )
        for r in rows
    ]


def load_alert_state(conn: Conn, ph: str, prefix: str) -> dict[str, tuple[float, float]]:
    """{key: (value, sent_at)} for the alert state keys starting with ``prefix``."""
    rows = conn.execute(
        sql("SELECT key, value, sent_at FROM alert_state WHERE key LIKE ?", ph), (prefix + "%",)
    ).fetchall()
    return {r["key"]: (r["value"], r["sent_at"]) for r in rows}


def forget_alert_state(conn: Conn, ph: str, prefix: str, sent_before: float) -> int:
    """Delete the alert state keys starting with ``prefix`` last sent before a time."""
    cursor = conn.execute(
        sql("DELETE FROM alert_state WHERE key LIKE ? AND sent_at < ?", ph),
        (prefix + "%", sent_before),
    )
    return int(cursor.rowcount)


def advance_alert_state(
    conn: Conn, ph: str, key: str, value: float, now: float, expected: float | None
) -> bool:
    """Set an alert's state to ``value`` if it is still ``expected`` (a missing key counts
    as 0), or, without ``expected``, if it is below ``value``. True: this caller changed
    it, and so is the one (of every replica) to send the alert."""
    conn.execute(
        sql(
            "INSERT INTO alert_state (key, value, sent_at) VALUES (?, 0, 0) ON CONFLICT DO NOTHING",
            ph,
        ),
        (key,),
    )
    guard, bound = ("value = ?", expected) if expected is not None else ("value < ?", value)
    cursor = conn.execute(
        sql(f"UPDATE alert_state SET value = ?, sent_at = ? WHERE key = ? AND {guard}", ph),
        (value, now, key, bound),
    )
    return bool(cursor.rowcount == 1)
