"""The soak's audit, once the faults have stopped and the queue has drained: read the
relay's database and the fake Infusionsoft's record, and check the promises.

- every 202 (or 200 duplicate) the senders got is a stored event, by id;
- every stored event is ``delivered``, or ``dead`` with its reason;
- no action set, template email or goal ran twice for an event; one that ran not at all
  is allowed only where its step says ``outcome_unknown`` (or the event is dead);
- no event is left claimed, and no step left ``sending``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row

# The step actions that must not run twice → where the fake records each run.
NOT_REPEATABLE = {
    "action_set": "action_set_runs",
    "email_template": "emails_sent",
    "goal": "goals_achieved",
}
EXAMPLES = 5  # offending ids listed per failed check


@dataclass
class Check:
    passed: bool
    detail: str
    examples: list[str] = field(default_factory=list)


@dataclass
class Audit:
    checks: dict[str, Check]
    outcomes: dict[str, Any]

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": {name: vars(check) for name, check in self.checks.items()},
        }


def read_events(database_url: str) -> list[dict[str, Any]]:
    query = "SELECT id, status, last_error, claimed_by, contact_email, steps FROM events"
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        rows = conn.execute(query).fetchall()
    for row in rows:
        row["steps"] = json.loads(row["steps"]) if isinstance(row["steps"], str) else row["steps"]
    return rows


def audit(events: list[dict[str, Any]], acknowledged: list[str], fake: dict[str, Any]) -> Audit:
    """``fake`` is the fake Infusionsoft's ``/_fake/state``."""
    stored = {event["id"] for event in events}
    missing = sorted(set(acknowledged) - stored)
    unfinished = [
        e["id"]
        for e in events
        if e["status"] not in ("delivered", "dead")
        or (e["status"] == "dead" and not e["last_error"])
    ]
    held = [
        e["id"]
        for e in events
        if e["claimed_by"] is not None or any(s["status"] == "sending" for s in e["steps"])
    ]
    twice, not_run, outcomes = _runs(events, fake)
    checks = {
        "every_acknowledged_webhook_stored": Check(
            not missing,
            f"{len(acknowledged) - len(missing)} of {len(acknowledged)} stored",
            missing,
        ),
        "every_event_delivered_or_dead_with_reason": Check(
            not unfinished,
            f"{len(unfinished)} neither delivered nor dead with a reason",
            unfinished,
        ),
        "nothing_applied_twice": Check(
            not twice, f"{len(twice)} calls that must not run twice ran more than once", twice
        ),
        "nothing_marked_done_without_running": Check(
            not not_run,
            f"{len(not_run)} steps done (not outcome_unknown) whose call never ran",
            not_run,
        ),
        "no_claim_left_held": Check(
            not held, f"{len(held)} events still claimed or with a step 'sending'", held
        ),
    }
    for check in checks.values():
        check.examples = check.examples[:EXAMPLES]
    outcomes["events"] = dict(Counter(e["status"] for e in events))
    return Audit(checks, outcomes)


def _runs(
    events: list[dict[str, Any]], fake: dict[str, Any]
) -> tuple[list[str], list[str], dict[str, Any]]:
    """(steps run twice, steps done but never run, outcome counts) — per contact, as each
    soak event has a contact of its own."""
    contact_ids = {c["email"].lower(): c["id"] for c in fake["contacts"]}
    runs = {
        action: Counter(record["contact_id"] for record in fake[key])
        for action, key in NOT_REPEATABLE.items()
    }
    twice: list[str] = []
    not_run: list[str] = []
    unknown: Counter[str] = Counter()
    unknown_ran: Counter[str] = Counter()
    for event in events:
        contact = contact_ids.get((event["contact_email"] or "").lower())
        for step in event["steps"]:
            action = step["action"]
            if action not in NOT_REPEATABLE:
                continue
            count = runs[action][contact] if contact is not None else 0
            is_unknown = "outcome_unknown" in (step.get("result") or {})
            label = f"{event['id']} {action} ran {count}x"
            if count > 1:
                twice.append(label)
            if is_unknown:
                unknown[action] += 1
                unknown_ran[action] += count
            elif step["status"] == "done" and count == 0:
                not_run.append(label)
    outcomes = {
        "outcome_unknown": dict(unknown),
        "outcome_unknown_that_ran": dict(unknown_ran),
        "runs": {action: sum(counter.values()) for action, counter in runs.items()},
    }
    return twice, not_run, outcomes
