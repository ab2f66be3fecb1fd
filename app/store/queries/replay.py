"""Replays: making stored events pending again, one or in bulk, optionally re-planned."""

from __future__ import annotations

import json

from app.domain.events import (
    CONTACT_UPSERT,
    AttemptRecord,
    EventFilter,
    Replanner,
    StepRecord,
    is_dry_run_step,
)
from app.store.database import Conn
from app.store.dialect import Dialect
from app.store.queries.events import (
    dumps,
    load_events,
    record_attempts,
    step_json,
)
from app.store.queries.operator import filter_clause


def requeue(
    conn: Conn,
    d: Dialect,
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

    False when the event is missing, when it is ignored and not re-planned (it has no
    plan to run), when ``replan`` finds nothing to deliver, or — for a replan or dry-run
    replay, which rewrite steps — while a worker holds it. An ignored event that
    ``replan`` routes loses its reason (``last_error``): a route takes it now.
    """
    row = conn.execute(
        d.sql(
            "SELECT status, claimed_by, claim_expires_at FROM events WHERE id = ?" + d.for_update
        ),
        (event_id,),
    ).fetchone()
    if row is None or (row["status"] == "ignored" and replan is None):
        return False
    rewrites = dry_run_steps or replan is not None
    if rewrites and row["claimed_by"] is not None and (row["claim_expires_at"] or 0) >= now:
        return False  # being delivered right now: its steps are the worker's
    record = load_events(conn, d, [event_id], with_payload=replan is not None)[0]
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
        d.sql(
            "UPDATE events SET status = 'pending', next_attempt_at = ?, first_failure_at = NULL, "
            "claimed_by = NULL, claim_expires_at = NULL, updated_at = ?, steps = ?, routes = ?, "
            "contact_email = ?, contact_key = ?, contact_id = ?, priority = ?, last_error = ? "
            "WHERE id = ?"
        ),
        (
            now,
            now,
            dumps([step_json(step) for step in record.steps]),
            dumps(routes),
            email,
            email.lower() if email else None,
            _known_contact_id(record.steps),
            1 if bulk else 0,
            None if row["status"] == "ignored" else record.last_error,
            event_id,
        ),
    )
    how = "from start" if from_start else "unfinished steps"
    if dry_run_steps:
        how += " and steps recorded in dry-run"
    if replan is not None:
        how += ", re-planned with the current relay.yaml"
    record_attempts(
        conn, d, [AttemptRecord(event_id, None, now, 0.0, "replay", how, None, "replay", None)]
    )
    return True


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


def requeue_candidates(
    conn: Conn, d: Dialect, flt: EventFilter, dry_run_steps: bool, replan: bool
) -> list[str]:
    """The ids a bulk replay considers (with ``dry_run_steps``, only events that have a
    step recorded in dry-run; ignored events only with ``replan``), oldest first."""
    where, params = filter_clause(flt)
    if not replan:
        where += " AND status <> 'ignored'"
    rows = conn.execute(
        d.sql(f"SELECT id, steps FROM events WHERE {where} ORDER BY seq"), params
    ).fetchall()
    return [
        row["id"]
        for row in rows
        if not dry_run_steps
        or any(is_dry_run_step(s["status"], s["result"]) for s in json.loads(row["steps"]))
    ]


def requeue_many(
    conn: Conn,
    d: Dialect,
    event_ids: list[str],
    now: float,
    from_start: bool = False,
    dry_run_steps: bool = False,
    replan: Replanner | None = None,
) -> int:
    """``requeue`` each event as a bulk replay (after live events); the number made
    pending."""
    return sum(
        requeue(conn, d, event_id, from_start, now, dry_run_steps, replan, bulk=True)
        for event_id in event_ids
    )
