"""The relay's one place where Infusionsoft (Keap) calls are made.

Every call passes the shared rate gate, is reported as a KeapCall, and fails only with a
classified KeapError (``app.keap.errors``). With OAuth, a call whose token is refused is
retried once after a refresh. Each method takes the ``CallContext`` of the step it serves
(``ctx``): its calls are recorded there, and its ``before_send`` hook is handed to the gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from app.keap.auth import OAuthSession
from app.keap.contacts import rest_upsert_body
from app.keap.errors import (
    KeapForbiddenError,
    KeapPermanentError,
    KeapTransientError,
)
from app.keap.lookups import KeapLookups
from app.keap.models import (
    CallContext,
    CallGate,
    ContactFields,
    KeapCall,
    KeapCredentials,
    StoredToken,
    TokenStore,
)
from app.keap.orders import find_in_orders, is_paid, keap_id, order_request, payment_request
from app.keap.replies import (
    expect_success,
    goal_results_reader,
    read_action_set_results,
    read_json,
    read_tag_results,
)
from app.keap.transport import XMLRPC_PATH, KeapTransport

__all__ = [
    "XMLRPC_PATH",
    "CallContext",
    "CallGate",
    "ContactFields",
    "KeapCall",
    "KeapClient",
    "KeapCredentials",
    "StoredToken",
    "TokenStore",
]

PROBE_PATH = "/rest/v1/oauth/connect/userinfo"
PROBE_FALLBACK_PATH = "/rest/v1/account/profile"
MAX_ORDER_PAGES = 20  # 20 000 orders of one contact: more is not a checkout


class KeapClient:
    """Each of the relay's Keap operations, made through one ``KeapTransport``."""

    def __init__(self, transport: KeapTransport, *, user_id: int | None = None) -> None:
        """``transport``: how each call is made (credentials, gate, observer, the XML-RPC
        sunset). ``user_id``: the Keap user emails are sent on behalf of
        (RELAY_KEAP_USER_ID); None: the credential's own user, asked of Keap once."""
        self._transport = transport
        self._call = self._transport.call
        self._xmlrpc = self._transport.xmlrpc
        self._lookups = KeapLookups(self._call, user_id=user_id)

    @property
    def oauth(self) -> OAuthSession | None:
        """The OAuth token keeper (None with an API key): proactive refresh, token age."""
        return self._transport.oauth

    async def upsert_contact(self, fields: ContactFields, *, ctx: CallContext | None = None) -> int:
        """Create or update the contact by email (REST); its Keap id.

        Keap takes a contact's company by id only: a company name is first resolved to
        its company, which is created when missing.
        """
        company_id = fields.company_id
        if company_id is None and fields.company:
            company_id = await self._lookups.company_id(fields.company, ctx)
        payload = await self._call(
            "contact.upsert",
            "PUT",
            "/rest/v1/contacts",
            read_json,
            json_body=rest_upsert_body(fields, company_id),
            ctx=ctx,
        )
        contact_id = payload.get("id") if isinstance(payload, dict) else None
        return _contact_id("contact.upsert", contact_id)

    async def run_action_set(
        self, contact_id: int, action_set_id: int, *, ctx: CallContext | None = None
    ) -> None:
        await self._xmlrpc(
            "action_set.run",
            read_action_set_results,
            "ContactService.runActionSequence",
            int(contact_id),
            int(action_set_id),
            ctx=ctx,
        )

    async def add_tags(
        self, contact_id: int, tag_ids: Sequence[int], *, ctx: CallContext | None = None
    ) -> None:
        """One v1 call for all the tags; a 200 can still refuse one (``read_tag_results``)."""
        if not tag_ids:
            return
        await self._call(
            "tags.add",
            "POST",
            f"/rest/v1/contacts/{int(contact_id)}/tags",
            read_tag_results,
            json_body={"tagIds": [int(tag_id) for tag_id in tag_ids]},
            ctx=ctx,
        )

    async def remove_tag(
        self, contact_id: int, tag_id: int, *, ctx: CallContext | None = None
    ) -> None:
        path = f"/rest/v1/contacts/{int(contact_id)}/tags/{int(tag_id)}"
        await self._call("tags.remove", "DELETE", path, expect_success, ctx=ctx)

    async def add_to_sequence(
        self, contact_id: int, campaign_id: int, sequence_id: int, *, ctx: CallContext | None = None
    ) -> None:
        path = _sequence_path(contact_id, campaign_id, sequence_id)
        await self._call("sequence.add", "POST", path, expect_success, ctx=ctx)

    async def remove_from_sequence(
        self, contact_id: int, campaign_id: int, sequence_id: int, *, ctx: CallContext | None = None
    ) -> None:
        path = _sequence_path(contact_id, campaign_id, sequence_id)
        await self._call("sequence.remove", "DELETE", path, expect_success, ctx=ctx)

    async def send_email_template(
        self, contact_id: int, template_id: int, *, ctx: CallContext | None = None
    ) -> None:
        """REST v2 ``templates:send`` (it answers 202), on behalf of the sending user."""
        # Discovering the user id (once per process) is this step's first call; for a
        # step that must not run twice it is then the one marked as sending: a crash
        # during it leaves the email unsent and flagged, never sent twice.
        user_id = await self._lookups.sender_user_id(ctx)
        await self._call(
            "email_template.send",
            "POST",
            "/rest/v2/emails/templates:send",
            expect_success,
            json_body={
                "template_id": str(int(template_id)),
                "contact_ids": [str(int(contact_id))],
                "user_id": str(user_id),
            },
            ctx=ctx,
        )

    async def achieve_goal(
        self, contact_id: int, integration: str, call_name: str, *, ctx: CallContext | None = None
    ) -> list[dict[str, Any]]:
        """Each campaign's result; a goal that started no campaign is a permanent failure."""
        path = f"/rest/v1/campaigns/goals/{quote(integration, safe='')}/{quote(call_name, safe='')}"
        return await self._call(
            "goal.achieve",
            "POST",
            path,
            goal_results_reader(integration, call_name),
            json_body={"contact_id": int(contact_id)},
            ctx=ctx,
        )

    # REST v2's many-contacts calls, for batching across events (app.delivery.batching).
    # Shapes: infusionsoft/keap-sdk, sdks/v2/swagger.yml (ApplyRemoveTagRequest,
    # ApplyTagsResponse, Add/RemoveContacts…SequenceRequest and …Response).
    async def apply_tag_to_contacts(
        self, tag_id: int, contact_ids: Sequence[int], *, ctx: CallContext | None = None
    ) -> dict[int, str]:
        """``POST /v2/tags/{id}/contacts:applyTags``: each contact's status."""
        payload = await self._call(
            "tags.apply_many",
            "POST",
            f"/rest/v2/tags/{int(tag_id)}/contacts:applyTags",
            read_json,
            json_body=_contact_ids_body(contact_ids),
            ctx=ctx,
        )
        return _per_contact("tags.apply_many", payload, "results")

    async def remove_tag_from_contacts(
        self, tag_id: int, contact_ids: Sequence[int], *, ctx: CallContext | None = None
    ) -> None:
        """``POST /v2/tags/{id}/contacts:removeTags``: 204, no result per contact."""
        await self._call(
            "tags.remove_many",
            "POST",
            f"/rest/v2/tags/{int(tag_id)}/contacts:removeTags",
            expect_success,
            json_body=_contact_ids_body(contact_ids),
            ctx=ctx,
        )

    async def change_sequence_contacts(
        self,
        campaign_id: int,
        sequence_id: int,
        contact_ids: Sequence[int],
        *,
        add: bool,
        ctx: CallContext | None = None,
    ) -> dict[int, str]:
        """``POST /v2/campaigns/{c}/sequences/{s}:addContacts`` (``:removeContacts``):
        each contact's result (SUCCESS, ALREADY_IN_SEQUENCE, CONTACT_DOES_NOT_EXIST, FAILED)."""
        verb, key = (
            ("addContacts", "add_to_sequence_results")
            if add
            else ("removeContacts", "remove_from_sequence_results")
        )
        operation = "sequence.add_many" if add else "sequence.remove_many"
        payload = await self._call(
            operation,
            "POST",
            f"/rest/v2/campaigns/{int(campaign_id)}/sequences/{int(sequence_id)}:{verb}",
            read_json,
            json_body=_contact_ids_body(contact_ids),
            ctx=ctx,
        )
        return _per_contact(operation, payload, key)

    async def create_order(
        self, contact_id: int, order: dict[str, Any], *, ctx: CallContext | None = None
    ) -> dict[str, Any]:
        """REST v2 ``POST /orders``; an order that carries the sender's order id is first
        looked for among the contact's orders (by that custom field) and reused."""
        field_id, sender_id = order.get("order_id_field"), order.get("sender_order_id")
        if field_id and sender_id:
            found = await self.find_order(contact_id, int(field_id), str(sender_id), ctx=ctx)
            if found is not None:
                return {"keap_order_id": found, "reused": True}
        payload = await self._call(
            "order.create",
            "POST",
            "/rest/v2/orders",
            read_json,
            json_body=order_request(contact_id, order),
            ctx=ctx,
        )
        order_id = keap_id("order.create", _get(payload, "id"), "order")
        return {"keap_order_id": order_id, "reused": False}

    async def find_order(
        self,
        contact_id: int,
        field_id: int,
        sender_order_id: str,
        *,
        ctx: CallContext | None = None,
    ) -> int | None:
        """The contact's order whose custom field ``field_id`` holds the sender's order id.

        v2 filters orders by a custom field's *name* only, so the contact's orders are
        listed (``contact_id==``) and their custom fields compared by id."""
        token = ""
        for _ in range(MAX_ORDER_PAGES):
            query = f"filter={quote(f'contact_id=={int(contact_id)}', safe='')}&page_size=1000"
            if token:
                query += f"&page_token={quote(token, safe='')}"
            try:
                payload = await self._call(
                    "order.find", "GET", f"/rest/v2/orders?{query}", read_json, ctx=ctx
                )
            except KeapTransientError as err:
                err.maybe_applied = False  # a lookup changes nothing: retrying is harmless
                raise
            found, token = find_in_orders(payload, field_id, sender_order_id)
            if found is not None or not token:
                return found
        return None

    async def record_payment(
        self, order_id: int, payment: dict[str, Any], *, ctx: CallContext | None = None
    ) -> dict[str, Any]:
        """REST v2 ``POST /orders/{id}/payments`` (a manual payment record), unless the
        order has been paid already."""
        path = f"/rest/v2/orders/{int(order_id)}"
        try:
            order = await self._call("order.get", "GET", path, read_json, ctx=ctx)
        except KeapTransientError as err:
            err.maybe_applied = False  # reading the order changes nothing
            raise
        if is_paid(order):
            return {"keap_order_id": order_id, "already_paid": True}
        if not payment["amount"]:
            return {"keap_order_id": order_id, "nothing_to_pay": True}
        answer = await self._call(
            "payment.create",
            "POST",
            f"{path}/payments",
            read_json,
            json_body=payment_request(payment),
            ctx=ctx,
        )
        payment_id = keap_id("payment.create", _get(answer, "id"), "payment")
        return {"keap_order_id": order_id, "keap_payment_id": payment_id}

    async def add_note(
        self, contact_id: int, title: str, text: str, *, ctx: CallContext | None = None
    ) -> int:
        """REST v2 ``POST /contacts/{id}/notes`` by the sending user (``user_id`` is
        required: CreateNoteRequest); the note's id."""
        user_id = await self._lookups.sender_user_id(ctx)
        payload = await self._call(
            "note.create",
            "POST",
            f"/rest/v2/contacts/{int(contact_id)}/notes",
            read_json,
            json_body={"title": title, "text": text, "user_id": str(user_id)},
            ctx=ctx,
        )
        return keap_id("note.create", _get(payload, "id"), "note")

    async def probe_auth(self, ctx: CallContext | None = None) -> None:
        """Raises KeapAuthError if Keap rejects the credential (other KeapErrors as usual).

        The OpenID Connect userinfo endpoint describes the credential's own user, so no
        permission can withhold it from a PAT or an OAuth token — unlike a data read or the
        account profile. A service account key may act for no user (unpublished), so when
        userinfo answers 403 the account profile, which an admin credential reads, decides
        (docs/keap-api.md, "Auth")."""
        try:
            await self._call("auth.probe", "GET", PROBE_PATH, expect_success, ctx=ctx)
        except KeapForbiddenError:
            await self._call("auth.probe", "GET", PROBE_FALLBACK_PATH, expect_success, ctx=ctx)


def _sequence_path(contact_id: int, campaign_id: int, sequence_id: int) -> str:
    return (
        f"/rest/v1/campaigns/{int(campaign_id)}/sequences/{int(sequence_id)}"
        f"/contacts/{int(contact_id)}"
    )


def _contact_ids_body(contact_ids: Sequence[int]) -> dict[str, list[str]]:
    return {"contact_ids": [str(int(c)) for c in contact_ids]}


def _per_contact(operation: str, payload: Any, key: str) -> dict[int, str]:
    """A v2 answer's map of contact id → result, under ``key``."""
    results = payload.get(key) if isinstance(payload, dict) else None
    if not isinstance(results, dict):
        raise KeapPermanentError(operation, f"the answer holds no {key!r} per contact")
    return {int(k): str(v) for k, v in results.items() if str(k).strip().isdigit()}


def _get(payload: Any, key: str) -> Any:
    return payload.get(key) if isinstance(payload, dict) else None


def _contact_id(operation: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise KeapPermanentError(operation, f"expected a contact id, got {_kind(value)}")


def _kind(value: Any) -> str:
    return type(value).__name__
