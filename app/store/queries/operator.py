"""The operator's reads (events, payloads, counts, open problems) and retention."""

from __future__ import annotations

from typing import Any

from app.domain.events import (
    AttemptRecord,
    EventFilter,
    EventRecord,
)
from app.domain.problems import DeadGroup
from app.store.database import Conn
from app.store.dialect import Dialect
from app.store.queries.events import (
    load_events,
    route_label,
)


def event_payload_text(conn: Conn, d: Dialect, event_id: str) -> str | None:
    """The payload exactly as stored (JSON text), without parsing it."""
    row = conn.execute(d.sql("SELECT payload FROM events WHERE id = ?"), (event_id,)).fetchone()
    return None if row is None else str(row["payload"])


def filter_clause(flt: EventFilter) -> tuple[str, list[Any]]:
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
    conn: Conn, d: Dialect, flt: EventFilter, limit: int, before_seq: int | None
) -> list[EventRecord]:
    where, params = filter_clause(flt)
    if before_seq is not None:
        where += " AND seq < ?"
        params.append(before_seq)
    rows = conn.execute(
        d.sql(f"SELECT id FROM events WHERE {where} ORDER BY seq DESC LIMIT ?"),
        (*params, limit),
    ).fetchall()
    ids = [row["id"] for row in rows]
    records = load_events(conn, d, ids, with_payload=False)
    return sorted(records, key=lambda r: r.seq, reverse=True)


def get_event(conn: Conn, d: Dialect, event_id: str) -> EventRecord | None:
    records = load_events(conn, d, [event_id], with_payload=True)
    if not records:
        return None
    record = records[0]
    rows = conn.execute(
        d.sql(
            "SELECT event_id, step_idx, started_at, duration, operation, request, status_code, "
            "outcome, error FROM attempts WHERE event_id = ? ORDER BY id"
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


def count_by_status(conn: Conn, d: Dialect) -> dict[str, int]:
    rows = conn.execute("SELECT status, COUNT(*) AS n FROM events GROUP BY status").fetchall()
    return {row["status"]: int(row["n"]) for row in rows}


def purge_finished(conn: Conn, d: Dialect, before: float, batch: int) -> int:
    """Delete up to ``batch`` delivered or ignored events last touched before ``before``."""
    rows = conn.execute(
        d.sql(
            "SELECT id FROM events WHERE status IN ('delivered', 'ignored') AND updated_at < ? "
            "LIMIT ?"
        ),
        (before, batch),
    ).fetchall()
    ids = [row["id"] for row in rows]
    if not ids:
        return 0
    marks = ", ".join("?" for _ in ids)
    for table, column in (("attempts", "event_id"), ("events", "id")):
        conn.execute(d.sql(f"DELETE FROM {table} WHERE {column} IN ({marks})"), ids)
    return len(ids)


def dead_groups(conn: Conn, d: Dialect, limit: int) -> list[DeadGroup]:
    """Dead events by source, routes and reason, the largest groups first."""
    rows = conn.execute(
        d.sql(
            "SELECT source, routes, last_error, COUNT(*) AS n, MIN(updated_at) AS first_at, "
            "MAX(updated_at) AS last_at FROM events WHERE status = 'dead' "
            "GROUP BY source, routes, last_error ORDER BY n DESC, last_at DESC LIMIT ?"
        ),
        (limit,),
    ).fetchall()
    return [
        DeadGroup(
            source=r["source"],
            route=route_label(r["routes"]),
            reason=r["last_error"] or "",
            count=int(r["n"]),
            first_at=r["first_at"],
            last_at=r["last_at"],
            routes_json=r["routes"],
        )
        for r in rows
    ]
