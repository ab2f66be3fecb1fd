"""Dry-run: every call is planned and recorded, none is sent."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from app.keap.client import CallContext, ContactFields, KeapCall


class DryRunKeapClient:
    """Answers like Infusionsoft would, without a network: each call is reported to the
    observer (so it lands in the event's history) with status_code None."""

    def __init__(self, observer: Callable[[KeapCall], None]) -> None:
        self.observer = observer

    def _report(self, ctx: CallContext, operation: str, method: str, path: str) -> None:
        call = KeapCall(
            operation=operation,
            method=method,
            path=f"[dry-run] {path}",
            status_code=None,
            duration=0.0,
            error=None,
            throttle={},
        )
        ctx.record(call)
        self.observer(call)

    async def upsert_contact(self, fields: ContactFields, *, ctx: CallContext) -> int:
        if fields.company and fields.company_id is None:
            self._report(ctx, "company.find", "GET", "/rest/v2/companies")
        self._report(ctx, "contact.upsert", "PUT", "/rest/v1/contacts")
        # A stable stand-in id per email, so a dry run's history reads like a real one.
        return int(hashlib.sha256(fields.email.lower().encode()).hexdigest()[:7], 16)

    async def run_action_set(
        self, contact_id: int, action_set_id: int, *, ctx: CallContext
    ) -> None:
        self._report(ctx, "action_set.run", "POST", "/xmlrpc/v1 ContactService.runActionSequence")

    async def add_tags(self, contact_id: int, tag_ids: list[int], *, ctx: CallContext) -> None:
        self._report(ctx, "tags.add", "POST", f"/rest/v1/contacts/{contact_id}/tags")

    async def remove_tag(self, contact_id: int, tag_id: int, *, ctx: CallContext) -> None:
        self._report(ctx, "tags.remove", "DELETE", f"/rest/v1/contacts/{contact_id}/tags/{tag_id}")

    async def add_to_sequence(
        self, contact_id: int, campaign_id: int, sequence_id: int, *, ctx: CallContext
    ) -> None:
        self._report(
            ctx,
            "sequence.add",
            "POST",
            f"/rest/v1/campaigns/{campaign_id}/sequences/{sequence_id}/contacts/{contact_id}",
        )

    async def remove_from_sequence(
        self, contact_id: int, campaign_id: int, sequence_id: int, *, ctx: CallContext
    ) -> None:
        self._report(
            ctx,
            "sequence.remove",
            "DELETE",
            f"/rest/v1/campaigns/{campaign_id}/sequences/{sequence_id}/contacts/{contact_id}",
        )

    async def send_email_template(
        self, contact_id: int, template_id: int, *, ctx: CallContext
    ) -> None:
        self._report(ctx, "email_template.send", "POST", "/rest/v2/emails/templates:send")

    async def achieve_goal(
        self, contact_id: int, integration: str, call_name: str, *, ctx: CallContext
    ) -> list[dict[str, Any]]:
        self._report(
            ctx, "goal.achieve", "POST", f"/rest/v1/campaigns/goals/{integration}/{call_name}"
        )
        return [{"success": True, "message": "dry-run", "at": time.time()}]

    async def create_order(
        self, contact_id: int, order: dict[str, Any], *, ctx: CallContext
    ) -> dict[str, Any]:
        if order.get("sender_order_id"):
            self._report(ctx, "order.find", "GET", "/rest/v2/orders")
        self._report(ctx, "order.create", "POST", "/rest/v2/orders")
        # A stand-in id, so the payment step after it plans against "this order".
        seed = f"{contact_id}/{order.get('sender_order_id') or order.get('title')}"
        return {"keap_order_id": int(hashlib.sha256(seed.encode()).hexdigest()[:7], 16)}

    async def find_order(
        self, contact_id: int, field_id: int, sender_order_id: str, *, ctx: CallContext
    ) -> int | None:
        self._report(ctx, "order.find", "GET", "/rest/v2/orders")
        return None

    async def record_payment(
        self, order_id: int, payment: dict[str, Any], *, ctx: CallContext
    ) -> dict[str, Any]:
        self._report(ctx, "payment.create", "POST", f"/rest/v2/orders/{order_id}/payments")
        return {"keap_order_id": order_id}

    async def add_note(self, contact_id: int, title: str, text: str, *, ctx: CallContext) -> int:
        self._report(ctx, "note.create", "POST", f"/rest/v2/contacts/{contact_id}/notes")
        return 0
