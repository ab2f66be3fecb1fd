"""What a drain did to each event, read from the relay's own records after it: every
tag and sequence step carried out exactly once for its event (one Keap call answered for
it, batched or not), and one contact's events delivered in the order they came in.

Pure over rows, so it can be checked on rows made up in a test; ``read_rows`` reads them
from either database.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

# The steps Keap applies for a contact that the batching may merge across events.
AUDITED_ACTIONS = frozenset({"tags", "remove_tags", "sequence", "remove_sequence", "action_set"})


@dataclass(frozen=True)
class EventRow:
    id: str
    seq: int
    contact_key: str | None
    status: str
    steps: list[dict[str, Any]]


@dataclass(frozen=True)
class AttemptRow:
    event_id: str
    step_idx: int | None
    started_at: float
    duration: float
    outcome: str


def audit(events: list[EventRow], attempts: list[AttemptRow]) -> dict[str, Any]:
    """Counts of the steps applied once, more than once or never, and of the contacts
    whose events were not delivered in order (a later event's first call started before
    an earlier event's last call ended)."""
    answered: dict[tuple[str, int], int] = defaultdict(int)
    span: dict[str, tuple[float, float]] = {}
    for a in attempts:
        if a.outcome == "ok" and a.step_idx is not None:
            answered[(a.event_id, a.step_idx)] += 1
        first, last = span.get(a.event_id, (a.started_at, a.started_at + a.duration))
        span[a.event_id] = (min(first, a.started_at), max(last, a.started_at + a.duration))
    once = twice = never = 0
    for event in events:
        for idx, step in enumerate(event.steps):  # a step's index is its place in the list
            if step.get("action") not in AUDITED_ACTIONS:
                continue
            n = answered[(event.id, idx)]
            once += n == 1
            twice += n > 1
            never += n == 0
    by_contact: dict[str, list[EventRow]] = defaultdict(list)
    for event in events:
        if event.contact_key:
            by_contact[event.contact_key].append(event)
    out_of_order = 0
    for group in by_contact.values():
        spans = [span[e.id] for e in sorted(group, key=lambda e: e.seq) if e.id in span]
        if any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)):
            out_of_order += 1
    return {
        "steps_audited": once + twice + never,
        "steps_applied_once": once,
        "steps_applied_more_than_once": twice,
        "steps_never_applied": never,
        "contacts": len(by_contact),
        "contacts_with_several_events": sum(1 for g in by_contact.values() if len(g) > 1),
        "contacts_out_of_order": out_of_order,
        "met": twice == 0 and never == 0 and out_of_order == 0,
    }


def read_rows(url: str) -> tuple[list[EventRow], list[AttemptRow]]:
    """The events and attempts of a relay database (``sqlite:///path`` or PostgreSQL)."""
    events_sql = "SELECT id, seq, contact_key, status, steps FROM events"
    attempts_sql = "SELECT event_id, step_idx, started_at, duration, outcome FROM attempts"
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)
        try:
            event_rows = conn.execute(events_sql).fetchall()
            attempt_rows = conn.execute(attempts_sql).fetchall()
        finally:
            conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg:
            event_rows = pg.execute(events_sql).fetchall()
            attempt_rows = pg.execute(attempts_sql).fetchall()
    events = [
        EventRow(str(i), int(seq), key, str(status), _steps(steps))
        for i, seq, key, status, steps in event_rows
    ]
    attempts = [
        AttemptRow(str(e), None if idx is None else int(idx), float(at), float(d), str(o))
        for e, idx, at, d, o in attempt_rows
    ]
    return events, attempts


def audit_database(url: str) -> dict[str, Any]:
    return audit(*read_rows(url))


def _steps(raw: Any) -> list[dict[str, Any]]:
    steps = json.loads(raw) if isinstance(raw, str) else raw
    return [s if isinstance(s, dict) else {} for s in steps]
