"""Run one planned step as Infusionsoft calls: the only place that maps an action to a
client method."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from app.domain.events import StepRecord
from app.keap.client import ContactFields
from app.keap.errors import KeapPermanentError
from app.plan.planner import CONTACT_UPSERT


class KeapActions(Protocol):
    async def upsert_contact(self, fields: ContactFields) -> int: ...
    async def run_action_set(self, contact_id: int, action_set_id: int) -> None: ...
    async def add_tags(self, contact_id: int, tag_ids: list[int]) -> None: ...
    async def remove_tag(self, contact_id: int, tag_id: int) -> None: ...
    async def add_to_sequence(
        self, contact_id: int, campaign_id: int, sequence_id: int
    ) -> None: ...
    async def remove_from_sequence(
        self, contact_id: int, campaign_id: int, sequence_id: int
    ) -> None: ...
    async def send_email_template(self, contact_id: int, template_id: int) -> None: ...
    async def achieve_goal(
        self, contact_id: int, integration: str, call_name: str
    ) -> list[dict[str, Any]]: ...
    async def create_order(self, contact_id: int, order: dict[str, Any]) -> dict[str, Any]: ...
    async def find_order(
        self, contact_id: int, field_id: int, sender_order_id: str
    ) -> int | None: ...
    async def record_payment(self, order_id: int, payment: dict[str, Any]) -> dict[str, Any]: ...
    async def add_note(self, contact_id: int, title: str, text: str) -> int: ...


def contact_fields(params: dict[str, Any]) -> ContactFields:
    custom = {int(k): v for k, v in (params.get("custom_fields") or {}).items()}
    return ContactFields(
        email=params["email"],
        given_name=params.get("given_name"),
        family_name=params.get("family_name"),
        phone=params.get("phone"),
        company=params.get("company"),
        company_id=_company_id(params.get("company_id")),
        opt_in_reason=params.get("opt_in_reason"),
        custom_fields=custom,
    )


async def run_step(
    client: KeapActions,
    step: StepRecord,
    contact_id: int | None,
    earlier: Mapping[int, Any] | None = None,
) -> dict[str, Any]:
    """Make the step's calls; return what to store as its result. ``earlier``: the
    results of the event's finished steps, by index (a payment needs its order's id)."""
    p = step.params
    if step.action == CONTACT_UPSERT:
        return {"contact_id": await client.upsert_contact(contact_fields(p))}
    if contact_id is None:
        raise KeapPermanentError(step.action, "no contact id: the upsert step has no result")
    match step.action:
        case "action_set":
            await client.run_action_set(contact_id, p["id"])
        case "tags":
            await client.add_tags(contact_id, list(p["ids"]))
        case "remove_tags":
            for tag_id in p["ids"]:
                await client.remove_tag(contact_id, tag_id)
        case "sequence":
            await client.add_to_sequence(contact_id, p["campaign"], p["sequence"])
        case "remove_sequence":
            await client.remove_from_sequence(contact_id, p["campaign"], p["sequence"])
        case "email_template":
            await client.send_email_template(contact_id, p["id"])
        case "goal":
            results = await client.achieve_goal(contact_id, p["integration"], p["call_name"])
            return {"contact_id": contact_id, "goal_results": results}
        case "order":
            created = await client.create_order(contact_id, dict(p))
            return {"contact_id": contact_id, **_order_ids(p), **created}
        case "payment":
            order_id = await _payment_order_id(client, p, contact_id, earlier or {})
            paid = await client.record_payment(order_id, dict(p))
            return {"contact_id": contact_id, **_order_ids(p), **paid}
        case "note":
            note_id = await client.add_note(contact_id, p["title"], p["text"])
            return {"contact_id": contact_id, "keap_note_id": note_id}
        case _:
            raise KeapPermanentError(step.action, f"unknown action {step.action!r}")
    return {"contact_id": contact_id}


def _order_ids(params: Mapping[str, Any]) -> dict[str, Any]:
    """The sender's order id, shown in the step's result beside Keap's."""
    sender = params.get("sender_order_id")
    return {"sender_order_id": sender} if sender else {}


async def _payment_order_id(
    client: KeapActions, params: Mapping[str, Any], contact_id: int, earlier: Mapping[int, Any]
) -> int:
    """The Keap order this payment is for: its order step's result, else (that step's
    answer was lost) the contact's order holding the sender's order id."""
    result = earlier.get(params["order_step"])
    if isinstance(result, dict) and isinstance(result.get("keap_order_id"), int):
        return int(result["keap_order_id"])
    field_id, sender = params.get("order_id_field"), params.get("sender_order_id")
    found = None
    if field_id and sender:
        found = await client.find_order(contact_id, int(field_id), str(sender))
    if found is None:
        raise KeapPermanentError(
            "payment.create",
            "the order step did not say which Keap order it made (its answer was lost)"
            + (f" and no order holds sender order id {sender!r}" if sender else "")
            + ": record the payment in Keap, or replay the event from the start",
        )
    return found


def _company_id(value: Any) -> int | None:
    """A ``company_id`` mapped from the webhook: a Keap company id, or the step fails."""
    if value is None:
        return None
    text = str(value).strip()
    if not text.isdigit() or int(text) <= 0:
        raise KeapPermanentError(
            CONTACT_UPSERT, f"contact.company_id must be a Keap company id, got {text[:40]!r}"
        )
    return int(text)
