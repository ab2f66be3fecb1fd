"""Plan a stored event again with the current relay.yaml, keeping what already happened.

A step of the new plan takes over the state of an old step that is *the same call*: same
route, same action, same parameters, made for the same contact (the email its upsert
step looks up). A step that succeeded (or was in flight) under the old plan is then not
run again; every other step of the new plan is pending. A contact upsert is the same call
only when its fields are unchanged: otherwise it simply runs again (upserts are safe to
repeat), and the steps after it reuse the contact id it finds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from app.config.models import RelayConfig
from app.domain.events import CONTACT_UPSERT, EventRecord, PlannedStep, Replanned, StepRecord
from app.plan.orders import ORDER_STEP, PAYMENT_STEP
from app.plan.planner import plan_event

# States worth keeping: "done" must not repeat, "sending" (a worker died mid-call) must not
# be blindly repeated either. Pending and failed steps have nothing to keep.
_KEPT_STATUSES = frozenset({"done", "sending"})

StepIdentity = tuple[str, str, str]
_DATES = {ORDER_STEP: ("order_time",), PAYMENT_STEP: ("payment_time",)}


def replan_event(config: RelayConfig, record: EventRecord) -> Replanned | None:
    """The event's new plan, or None when the current relay.yaml would not deliver it.

    The document is rebuilt from what was stored: the parsed body and the non-secret
    headers (query strings of POSTed webhooks are not stored, so a route selecting from
    ``query`` sees none).
    """
    document = {"headers": record.headers, "body": record.payload, "query": {}}
    plan = plan_event(
        config, record.source, record.event_type, document, received_at=record.received_at
    )
    if plan.status != "pending":
        return None
    kept: dict[StepIdentity, list[StepRecord]] = defaultdict(list)
    old_params = [step.params for step in record.steps]
    for step in record.steps:
        if step.status in _KEPT_STATUSES:
            kept[step_identity(step.route, step.action, step.params, old_params)].append(step)
    new_params = [step.params for step in plan.steps]
    steps = []
    for idx, planned in enumerate(plan.steps):
        same = kept.get(step_identity(planned.route, planned.action, planned.params, new_params))
        steps.append(_carried(idx, planned, same.pop(0)) if same else _fresh(idx, planned))
    return Replanned(routes=plan.routes, contact_email=plan.contact_email, steps=steps)


def step_identity(
    route: str, action: str, params: dict[str, Any], plan_params: list[dict[str, Any]]
) -> StepIdentity:
    """What makes two steps the same call: the contact a step is for is named by its
    email, not by the position of its upsert step (which moves when routes change). An
    order's and a payment's date is not part of it: a relay before 2026-11-29 dated an
    order with no date selector by the clock while planning, so every replan planned a
    new date, and an order must not be created twice (nor its payment taken twice)."""
    canonical = dict(params)
    for key in _DATES.get(action, ()):
        canonical.pop(key, None)
    if action != CONTACT_UPSERT and "contact_step" in canonical:
        contact = plan_params[canonical.pop("contact_step")]
        canonical["contact_email"] = str(contact.get("email", "")).lower()
    return route, action, json.dumps(canonical, sort_keys=True, default=str)


def _carried(idx: int, planned: PlannedStep, old: StepRecord) -> StepRecord:
    return StepRecord(
        idx,
        planned.route,
        planned.action,
        planned.params,
        old.status,
        old.attempts,
        old.last_error,
        old.result,
    )


def _fresh(idx: int, planned: PlannedStep) -> StepRecord:
    return StepRecord(idx, planned.route, planned.action, planned.params, "pending", 0, None, None)
