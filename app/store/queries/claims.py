"""A worker's claim on due events and what it records of each step while it holds it."""

from __future__ import annotations

import json
from typing import Any

from app.domain.events import (
    EventRecord,
)
from app.store.database import Conn
from app.store.dialect import Dialect
from app.store.queries.events import (
    dumps,
    load_events,
)

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
    conn: Conn, d: Dialect, worker_id: str, now: float, lease: float, limit: int
) -> list[EventRecord]:
    """Claim up to ``limit`` due events; an event waits while an earlier one of its
    contact is pending, so one contact's events are delivered in the order received.

    Live events (priority 0) go before those a bulk replay queued (priority 1), so a
    replay of thousands cannot starve new orders; a replayed event that holds back a live
    event of its contact goes with the live ones."""
    due = _DUE + d.skip_locked
    ids = [row["id"] for row in conn.execute(d.sql(due), (now, now, limit)).fetchall()]
    if not ids:
        return []
    marks = ", ".join("?" for _ in ids)
    conn.execute(
        d.sql(f"UPDATE events SET claimed_by = ?, claim_expires_at = ? WHERE id IN ({marks})"),
        (worker_id, now + lease, *ids),
    )
    records = load_events(conn, d, ids, with_payload=True)
    order = {event_id: i for i, event_id in enumerate(ids)}
    return sorted(records, key=lambda r: order[r.id])


def renew_claims(
    conn: Conn, d: Dialect, worker_id: str, event_ids: list[str], until: float
) -> None:
    marks = ", ".join("?" for _ in event_ids)
    conn.execute(
        d.sql(f"UPDATE events SET claim_expires_at = ? WHERE claimed_by = ? AND id IN ({marks})"),
        (until, worker_id, *event_ids),
    )


def _holds_claim(conn: Conn, d: Dialect, event_id: str, worker_id: str) -> bool:
    """Whether the worker still holds the event's claim — on PostgreSQL with the row locked
    until commit, so a claim taken over meanwhile cannot slip between this check and the
    write after it (READ COMMITTED would otherwise let both workers write)."""
    check = "SELECT 1 FROM events WHERE id = ? AND claimed_by = ? AND status = 'pending'"
    row = conn.execute(d.sql(check + d.for_update), (event_id, worker_id)).fetchone()
    return row is not None


def _load_steps(conn: Conn, d: Dialect, event_id: str) -> list[dict[str, Any]]:
    row = conn.execute(d.sql("SELECT steps FROM events WHERE id = ?"), (event_id,)).fetchone()
    steps: list[dict[str, Any]] = json.loads(row["steps"]) if row else []
    return steps


def complete_step(
    conn: Conn,
    d: Dialect,
    event_id: str,
    idx: int,
    worker_id: str,
    result: Any,
    contact_id: int | None,
    replaces: int | None = None,
) -> bool:
    """The event's contact id is the first upsert's; ``replaces``: a contact id that, if
    it is the event's, gives way to ``contact_id`` (the contact was upserted again)."""
    if not _holds_claim(conn, d, event_id, worker_id):
        return False
    steps = _load_steps(conn, d, event_id)
    steps[idx].update(
        status="done", attempts=steps[idx]["attempts"] + 1, result=result, last_error=None
    )
    conn.execute(
        d.sql(
            "UPDATE events SET steps = ?, contact_id = CASE WHEN contact_id = ? THEN ? "
            "ELSE COALESCE(contact_id, ?) END WHERE id = ?"
        ),
        (dumps(steps), replaces, contact_id, contact_id, event_id),
    )
    return True


def mark_step_sending(conn: Conn, d: Dialect, event_id: str, idx: int, worker_id: str) -> bool:
    """Record, before a call that must not run twice, that it is being sent."""
    if not _holds_claim(conn, d, event_id, worker_id):
        return False
    steps = _load_steps(conn, d, event_id)
    steps[idx]["status"] = "sending"
    conn.execute(d.sql("UPDATE events SET steps = ? WHERE id = ?"), (dumps(steps), event_id))
    return True


def fail_step(
    conn: Conn,
    d: Dialect,
    event_id: str,
    idx: int,
    worker_id: str,
    error: str,
    dead: bool,
    next_attempt_at: float | None,
    now: float,
) -> bool:
    if not _holds_claim(conn, d, event_id, worker_id):
        return False
    steps = _load_steps(conn, d, event_id)
    steps[idx].update(
        status="failed" if dead else "pending",
        attempts=steps[idx]["attempts"] + 1,
        last_error=error,
    )
    conn.execute(
        d.sql(
            "UPDATE events SET status = ?, attempts = attempts + 1, last_error = ?, steps = ?, "
            "first_failure_at = COALESCE(first_failure_at, ?), next_attempt_at = ?, "
            "claimed_by = NULL, claim_expires_at = NULL, updated_at = ? WHERE id = ?"
        ),
        (
            "dead" if dead else "pending",
            error,
            dumps(steps),
            now,
            None if dead else next_attempt_at,
            now,
            event_id,
        ),
    )
    return True


def give_up_step(
    conn: Conn, d: Dialect, event_id: str, idx: int, worker_id: str, error: str
) -> bool:
    """Record a step as failed for good while the event goes on with its other steps (it
    ends ``dead`` with this reason: see ``finish_event``)."""
    if not _holds_claim(conn, d, event_id, worker_id):
        return False
    steps = _load_steps(conn, d, event_id)
    steps[idx].update(status="failed", attempts=steps[idx]["attempts"] + 1, last_error=error)
    conn.execute(
        d.sql("UPDATE events SET steps = ?, last_error = ? WHERE id = ?"),
        (dumps(steps), error, event_id),
    )
    return True


def finish_event(
    conn: Conn, d: Dialect, event_id: str, worker_id: str, now: float, dead_reason: str | None
) -> bool:
    """Every step has run: ``delivered``, or ``dead`` with ``dead_reason`` when a step was
    given up on the way."""
    cursor = conn.execute(
        d.sql(
            "UPDATE events SET status = ?, attempts = attempts + 1, last_error = ?, "
            "next_attempt_at = NULL, claimed_by = NULL, claim_expires_at = NULL, updated_at = ? "
            "WHERE id = ? AND claimed_by = ? AND status = 'pending'"
        ),
        ("dead" if dead_reason else "delivered", dead_reason, now, event_id, worker_id),
    )
    return bool(cursor.rowcount == 1)


def release_claim(
    conn: Conn, d: Dialect, event_id: str, worker_id: str, next_attempt_at: float
) -> None:
    conn.execute(
        d.sql(
            "UPDATE events SET claimed_by = NULL, claim_expires_at = NULL, next_attempt_at = ? "
            "WHERE id = ? AND claimed_by = ?"
        ),
        (next_attempt_at, event_id, worker_id),
    )
