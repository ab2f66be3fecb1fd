"""Events as rows: writing new ones (the ingest path), reading them back, and the
JSON columns of both."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import orjson

from app.domain.events import (
    AttemptRecord,
    EventRecord,
    Inserted,
    NewEvent,
    PlannedStep,
    StepRecord,
)
from app.store.database import Conn
from app.store.dialect import Dialect, sql

_EVENT_COLUMNS = (
    "seq, id, source, event_type, external_id, status, received_at, contact_email, "
    "contact_id, attempts, next_attempt_at, first_failure_at, last_error, routes, steps"
)


def dumps(value: Any) -> str:
    """Compact JSON text, UTF-8 unescaped. orjson is ~10x the standard library on the
    payload, headers and steps every webhook stores (measured: 1 µs against 11-15 µs per
    event); integers wider than 64 bits, which it refuses, go to the standard library."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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
        dumps(e.payload),
        dumps(e.headers),
        dumps(e.routes),
        dumps([_new_step(s) for s in e.steps]),
        e.received_at,
    )


@lru_cache(maxsize=2 * MAX_ROWS_PER_STATEMENT)
def insert_sql(rows: int, placeholder: str) -> str:
    return sql(_INSERT_COLUMNS + ", ".join([_INSERT_ROW] * rows) + _INSERT_CONFLICT, placeholder)


def insert_rows(conn: Conn, d: Dialect, rows: list[EventRow]) -> int:
    """One INSERT of up to MAX_ROWS_PER_STATEMENT rows (stored keys skipped); the number
    of rows inserted."""
    cursor = conn.execute(insert_sql(len(rows), d.placeholder), [v for row in rows for v in row])
    return int(cursor.rowcount)


def insert_events(
    conn: Conn, d: Dialect, events: list[NewEvent], rows: list[EventRow] | None = None
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
        inserted += insert_rows(conn, d, rows[start : start + MAX_ROWS_PER_STATEMENT])
    if inserted == len(events):
        return [Inserted(e.id, created=True) for e in events]
    by_source: dict[str, set[str]] = {}
    for e in events:
        by_source.setdefault(e.source, set()).add(e.dedupe_key)
    stored: dict[tuple[str, str], str] = {}
    for source, keys in by_source.items():  # (source, dedupe_key) is the unique index
        marks = ", ".join("?" for _ in keys)
        found = conn.execute(
            d.sql(
                f"SELECT id, dedupe_key FROM events WHERE source = ? AND dedupe_key IN ({marks})"
            ),
            (source, *keys),
        ).fetchall()
        stored.update(((source, row["dedupe_key"]), row["id"]) for row in found)
    out = []
    for e in events:
        first = stored[(e.source, e.dedupe_key)]
        out.append(Inserted(first, created=first == e.id))
    return out


def load_events(conn: Conn, d: Dialect, ids: list[str], *, with_payload: bool) -> list[EventRecord]:
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    extra = ", payload, headers" if with_payload else ""
    rows = conn.execute(
        d.sql(f"SELECT {_EVENT_COLUMNS}{extra} FROM events WHERE id IN ({marks})"), ids
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


def step_json(step: StepRecord) -> dict[str, Any]:
    return {
        "route": step.route,
        "action": step.action,
        "params": step.params,
        "status": step.status,
        "attempts": step.attempts,
        "last_error": step.last_error,
        "result": step.result,
    }


def route_label(routes: str) -> str:
    return ", ".join(json.loads(routes)) if routes else ""


def record_attempts(conn: Conn, d: Dialect, attempts: list[AttemptRecord]) -> None:
    statement = d.sql(
        "INSERT INTO attempts (event_id, step_idx, started_at, duration, operation, request, "
        "status_code, outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
