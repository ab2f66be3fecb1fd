"""Run one planned step as Infusionsoft calls: the only place that maps an action to a
client method."""

from __future__ import annotations

from typing import Any, Protocol

from app.keap.client import ContactFields
from app.keap.errors import KeapPermanentError
from app.plan.planner import CONTACT_UPSERT
from app.store.base import StepRecord


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


async def run_step(client: KeapActions, step: StepRecord, contact_id: int | None) -> dict[str, Any]:
    """Make the step's calls; return what to store as its result."""
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
        case _:
            raise KeapPermanentError(step.action, f"unknown action {step.action!r}")
    return {"contact_id": contact_id}


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
