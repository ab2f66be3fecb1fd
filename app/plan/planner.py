"""Turn a verified, parsed event into its plan: matched routes, contact, ordered steps.

Pure functions over the config and the event document ``{headers, body, query}``: the
ingest path stores the plan with the event, and the worker only executes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.config.models import Action, ContactMapping, RelayConfig, Route
from app.domain.events import CONTACT_UPSERT, EventStatus, PlannedStep
from app.plan.orders import NOTE_STEP, ORDER_STEP, PAYMENT_STEP, PlanError, plan_note, plan_order

__all__ = ["CONTACT_UPSERT", "EventPlan", "matching_routes", "plan_event", "resolve_contact"]


@dataclass(slots=True)  # not frozen: made on every webhook (see PlannedStep)
class EventPlan:
    status: EventStatus
    routes: list[str] = field(default_factory=list)
    contact_email: str | None = None
    steps: list[PlannedStep] = field(default_factory=list)
    error: str | None = None


def matching_routes(
    config: RelayConfig, source: str, event_type: str | None, document: dict[str, Any]
) -> list[Route]:
    """Every route whose source, event pattern and ``when`` match, in file order."""
    matched = []
    for route in config.routes:
        if not route.matches_event(source, event_type):
            continue
        if route.when is not None and not _truthy(route.when.search(document)):
            continue
        matched.append(route)
    return matched


def plan_event(
    config: RelayConfig,
    source: str,
    event_type: str | None,
    document: dict[str, Any],
    *,
    received_at: float,
) -> EventPlan:
    """``received_at``: when the event came in; what an order without a date is dated, so
    that planning the event again (a replan) plans the same order."""
    routes = matching_routes(config, source, event_type, document)
    if not routes:
        return EventPlan(status="ignored", error=_ignored_reason(config, source, event_type))
    steps: list[PlannedStep] = []
    upsert_for_email: dict[str, int] = {}
    first_email: str | None = None
    for route in routes:
        contact = resolve_contact(route.contact, document)
        email = contact.get("email")
        if not email:
            return EventPlan(
                status="dead",
                routes=[r.name for r in routes],
                error=(
                    f"route {route.name}: no email at contact.email "
                    f"({route.contact.email.expression})"
                ),
            )
        first_email = first_email or email
        key = email.lower()
        if key not in upsert_for_email:
            upsert_for_email[key] = len(steps)
            steps.append(PlannedStep(route.name, CONTACT_UPSERT, contact))
        else:  # a second route for the same contact adds its fields to the one upsert
            idx = upsert_for_email[key]
            merged = {**contact, **steps[idx].params}
            steps[idx] = PlannedStep(steps[idx].route, CONTACT_UPSERT, merged)
        contact_step = upsert_for_email[key]
        for action in route.actions:
            try:
                steps += _action_steps(
                    route.name, action, contact_step, len(steps), document, received_at
                )
            except PlanError as exc:
                return EventPlan(
                    status="dead",
                    routes=[r.name for r in routes],
                    error=f"route {route.name}: {exc}",
                )
    return EventPlan(
        status="pending", routes=[r.name for r in routes], contact_email=first_email, steps=steps
    )


def _action_steps(
    route: str,
    action: Action,
    contact_step: int,
    first_idx: int,
    document: dict[str, Any],
    received_at: float,
) -> list[PlannedStep]:
    """The steps one action plans: an order is its order step, then its payment's."""
    base = {"contact_step": contact_step}
    if action.order is not None:
        order, payment = plan_order(action.order, document, received_at)
        steps = [PlannedStep(route, ORDER_STEP, {**base, **order})]
        if payment is not None:
            payment = {**base, "order_step": first_idx, **payment}
            steps.append(PlannedStep(route, PAYMENT_STEP, payment))
        return steps
    if action.note is not None:
        return [PlannedStep(route, NOTE_STEP, {**base, **plan_note(action.note, document)})]
    return [PlannedStep(route, action.kind, {**base, **action.step_params})]


def resolve_contact(mapping: ContactMapping, document: dict[str, Any]) -> dict[str, Any]:
    """The contact fields the mapping selects; absent or empty values are left out."""
    contact: dict[str, Any] = {}
    email = _text(mapping.email.search(document))
    if email and "@" in email:
        contact["email"] = email
    for name, selector in mapping.field_selectors:
        if value := _text(selector.search(document)):
            contact[name] = value
    if (
        mapping.full_name is not None
        and not (mapping.given_name or mapping.family_name)
        and (full := _text(mapping.full_name.search(document)))
    ):
        given, _, family = full.partition(" ")
        contact["given_name"] = given
        if family.strip():
            contact["family_name"] = family.strip()
    custom = {}
    for field_id, selector in mapping.custom_fields.items():
        value = selector.search(document)
        if value is not None and value != "":
            custom[str(field_id)] = value
    if custom:
        contact["custom_fields"] = custom
    return contact


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value).replace("\x00", "").strip()  # PostgreSQL text cannot hold NUL
    return text or None


def _truthy(value: Any) -> bool:
    # JMESPath truthiness: false, null, "", [], {} are false.
    return value not in (None, False, "", [], {})


def _ignored_reason(config: RelayConfig, source: str, event_type: str | None) -> str:
    if event_type is None:
        return "no event type found in the request"
    if not any(r.matches_event(source, event_type) for r in config.routes):
        return f"no route for event {event_type!r}"
    conditions = "; ".join(
        f"{r.name}: when {r.when.expression}"
        for r in config.routes
        if r.matches_event(source, event_type) and r.when is not None
    )
    return f"no route's condition matched event {event_type!r} ({conditions})"
