"""The action table: for each kind of planned step, the Infusionsoft calls it makes, whether
it may run twice, how it is batched across events, and how `relay check` describes it.

The one place that maps a step's kind to client methods (``steps.run_step`` runs it, the
worker asks whether a step may be repeated, ``batching`` how to group it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from app.config.order_text import describe_order
from app.domain.events import CONTACT_UPSERT
from app.keap.client import CallContext, ContactFields
from app.keap.errors import KeapPermanentError

# A group of steps sent as one many-contacts call: (kind, the ids that make it one call).
BatchKey = tuple[str, tuple[int, ...]]
NO_CONTACT = "no contact id: the upsert step has no result"
# A contact's result that means the step is done for it (v1 tag statuses, v2 sequence
# results: infusionsoft/keap-sdk, sdks/v2/swagger.yml).
DONE_STATUSES = frozenset({"SUCCESS", "DUPLICATE", "ALREADY_IN_SEQUENCE"})


class KeapActions(Protocol):
    """The client calls a step makes (``app.keap.client.KeapClient``, or the dry run's)."""

    async def upsert_contact(self, fields: ContactFields, *, ctx: CallContext) -> int: ...
    async def run_action_set(
        self, contact_id: int, action_set_id: int, *, ctx: CallContext
    ) -> None: ...
    async def add_tags(self, contact_id: int, tag_ids: list[int], *, ctx: CallContext) -> None: ...
    async def remove_tag(self, contact_id: int, tag_id: int, *, ctx: CallContext) -> None: ...
    async def add_to_sequence(
        self, contact_id: int, campaign_id: int, sequence_id: int, *, ctx: CallContext
    ) -> None: ...
    async def remove_from_sequence(
        self, contact_id: int, campaign_id: int, sequence_id: int, *, ctx: CallContext
    ) -> None: ...
    async def send_email_template(
        self, contact_id: int, template_id: int, *, ctx: CallContext
    ) -> None: ...
    async def achieve_goal(
        self, contact_id: int, integration: str, call_name: str, *, ctx: CallContext
    ) -> list[dict[str, Any]]: ...
    async def create_order(
        self, contact_id: int, order: dict[str, Any], *, ctx: CallContext
    ) -> dict[str, Any]: ...
    async def find_order(
        self, contact_id: int, field_id: int, sender_order_id: str, *, ctx: CallContext
    ) -> int | None: ...
    async def record_payment(
        self, order_id: int, payment: dict[str, Any], *, ctx: CallContext
    ) -> dict[str, Any]: ...
    async def add_note(
        self, contact_id: int, title: str, text: str, *, ctx: CallContext
    ) -> int: ...


@runtime_checkable
class BatchActions(Protocol):
    """REST v2's many-contacts calls, for batching across events."""

    async def apply_tag_to_contacts(
        self, tag_id: int, contact_ids: list[int], *, ctx: CallContext
    ) -> dict[int, str]: ...
    async def remove_tag_from_contacts(
        self, tag_id: int, contact_ids: list[int], *, ctx: CallContext
    ) -> None: ...
    async def change_sequence_contacts(
        self,
        campaign_id: int,
        sequence_id: int,
        contact_ids: list[int],
        *,
        add: bool,
        ctx: CallContext,
    ) -> dict[int, str]: ...


@dataclass(slots=True)  # made for every step run: kept light
class StepInput:
    """What a step's calls need: its params, its contact, the event's finished steps'
    results by index (a payment needs its order's id), and the step's call context."""

    kind: str
    params: Mapping[str, Any]
    contact_id: int | None
    earlier: Mapping[int, Any]
    ctx: CallContext

    @property
    def contact(self) -> int:
        """The contact's Keap id; the step fails for good when its upsert gave none."""
        if self.contact_id is None:
            raise KeapPermanentError(self.kind, NO_CONTACT)
        return self.contact_id


StepCall = Callable[[KeapActions, StepInput], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Batching:
    """How a repeatable step of many events becomes one many-contacts call: ``key`` (the
    ids that make two steps one call), ``calls`` (the v2 calls a group costs), ``send``
    (makes them; the contacts every call succeeded for)."""

    key: Callable[[Mapping[str, Any]], tuple[int, ...]]
    calls: Callable[[tuple[int, ...]], int]
    send: Callable[[BatchActions, tuple[int, ...], list[int], CallContext], Awaitable[set[int]]]


@dataclass(frozen=True)
class ActionSpec:
    kind: str
    call: StepCall
    # False: a crash mid-call or a lost answer leaves the step outcome_unknown, never
    # repeated (docs/delivery-guarantees.md has the table).
    repeatable: bool
    # A relay.yaml action's value, for `relay check` (None: planned, never written there).
    describe: Callable[[Any], str] | None
    batching: Batching | None = None  # None: never batched across events
    needs_contact: bool = True


# ---- the calls of each kind ---------------------------------------------------------
async def _upsert(client: KeapActions, s: StepInput) -> dict[str, Any]:
    return {"contact_id": await client.upsert_contact(contact_fields(s.params), ctx=s.ctx)}


async def _action_set(client: KeapActions, s: StepInput) -> dict[str, Any]:
    await client.run_action_set(s.contact, s.params["id"], ctx=s.ctx)
    return {"contact_id": s.contact}


async def _tags(client: KeapActions, s: StepInput) -> dict[str, Any]:
    await client.add_tags(s.contact, list(s.params["ids"]), ctx=s.ctx)
    return {"contact_id": s.contact}


async def _remove_tags(client: KeapActions, s: StepInput) -> dict[str, Any]:
    for tag_id in s.params["ids"]:
        await client.remove_tag(s.contact, tag_id, ctx=s.ctx)
    return {"contact_id": s.contact}


async def _sequence(client: KeapActions, s: StepInput) -> dict[str, Any]:
    await client.add_to_sequence(s.contact, s.params["campaign"], s.params["sequence"], ctx=s.ctx)
    return {"contact_id": s.contact}


async def _remove_sequence(client: KeapActions, s: StepInput) -> dict[str, Any]:
    p = s.params
    await client.remove_from_sequence(s.contact, p["campaign"], p["sequence"], ctx=s.ctx)
    return {"contact_id": s.contact}


async def _email_template(client: KeapActions, s: StepInput) -> dict[str, Any]:
    await client.send_email_template(s.contact, s.params["id"], ctx=s.ctx)
    return {"contact_id": s.contact}


async def _goal(client: KeapActions, s: StepInput) -> dict[str, Any]:
    p = s.params
    results = await client.achieve_goal(s.contact, p["integration"], p["call_name"], ctx=s.ctx)
    return {"contact_id": s.contact, "goal_results": results}


async def _order(client: KeapActions, s: StepInput) -> dict[str, Any]:
    created = await client.create_order(s.contact, dict(s.params), ctx=s.ctx)
    return {"contact_id": s.contact, **_order_ids(s.params), **created}


async def _payment(client: KeapActions, s: StepInput) -> dict[str, Any]:
    order_id = await _payment_order_id(client, s)
    paid = await client.record_payment(order_id, dict(s.params), ctx=s.ctx)
    return {"contact_id": s.contact, **_order_ids(s.params), **paid}


async def _note(client: KeapActions, s: StepInput) -> dict[str, Any]:
    note_id = await client.add_note(s.contact, s.params["title"], s.params["text"], ctx=s.ctx)
    return {"contact_id": s.contact, "keap_note_id": note_id}


# ---- batching across events ----------------------------------------------------------
def _tag_ids(params: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(int(t) for t in params["ids"])


def _sequence_ids(params: Mapping[str, Any]) -> tuple[int, ...]:
    return (int(params["campaign"]), int(params["sequence"]))


async def _apply_tags_many(
    client: BatchActions, tag_ids: tuple[int, ...], contacts: list[int], ctx: CallContext
) -> set[int]:
    done = set(contacts)
    for tag_id in tag_ids:
        statuses = await client.apply_tag_to_contacts(tag_id, contacts, ctx=ctx)
        done &= {c for c, status in statuses.items() if status.upper() in DONE_STATUSES}
    return done


async def _remove_tags_many(
    client: BatchActions, tag_ids: tuple[int, ...], contacts: list[int], ctx: CallContext
) -> set[int]:
    for tag_id in tag_ids:  # 204 for the whole list: no result per contact to check
        await client.remove_tag_from_contacts(tag_id, contacts, ctx=ctx)
    return set(contacts)


async def _change_sequence_many(
    client: BatchActions, ids: tuple[int, ...], contacts: list[int], ctx: CallContext, add: bool
) -> set[int]:
    campaign, sequence = ids
    results = await client.change_sequence_contacts(campaign, sequence, contacts, add=add, ctx=ctx)
    return set(contacts) & {c for c, r in results.items() if r.upper() in DONE_STATUSES}


async def _add_sequence_many(
    client: BatchActions, ids: tuple[int, ...], contacts: list[int], ctx: CallContext
) -> set[int]:
    return await _change_sequence_many(client, ids, contacts, ctx, add=True)


async def _remove_sequence_many(
    client: BatchActions, ids: tuple[int, ...], contacts: list[int], ctx: CallContext
) -> set[int]:
    return await _change_sequence_many(client, ids, contacts, ctx, add=False)


def _one_call_per_tag(tag_ids: tuple[int, ...]) -> int:
    return len(tag_ids)


def _one_call(_: tuple[int, ...]) -> int:
    return 1


def _id_list(ids: Any) -> str:
    return ", ".join(map(str, ids))


ACTIONS: dict[str, ActionSpec] = {
    spec.kind: spec
    for spec in (
        ActionSpec(
            CONTACT_UPSERT,
            _upsert,
            repeatable=True,
            describe=None,
            needs_contact=False,
        ),
        ActionSpec(
            "action_set",
            _action_set,
            repeatable=False,
            describe=lambda v: f"run action set {v} (XML-RPC ContactService.runActionSequence)",
        ),
        ActionSpec(
            "tags",
            _tags,
            repeatable=True,
            describe=lambda v: f"apply tags {_id_list(v)}",
            batching=Batching(_tag_ids, _one_call_per_tag, _apply_tags_many),
        ),
        ActionSpec(
            "remove_tags",
            _remove_tags,
            repeatable=True,
            describe=lambda v: f"remove tags {_id_list(v)}",
            batching=Batching(_tag_ids, _one_call_per_tag, _remove_tags_many),
        ),
        ActionSpec(
            "sequence",
            _sequence,
            repeatable=True,
            describe=lambda v: f"add to campaign {v.campaign} sequence {v.sequence}",
            batching=Batching(_sequence_ids, _one_call, _add_sequence_many),
        ),
        ActionSpec(
            "remove_sequence",
            _remove_sequence,
            repeatable=True,
            describe=lambda v: f"remove from campaign {v.campaign} sequence {v.sequence}",
            batching=Batching(_sequence_ids, _one_call, _remove_sequence_many),
        ),
        ActionSpec(
            "email_template",
            _email_template,
            repeatable=False,
            describe=lambda v: f"send email template {v}",
        ),
        ActionSpec(
            "goal",
            _goal,
            repeatable=False,
            describe=lambda v: f"achieve API goal {v.integration}/{v.call_name}",
        ),
        # An order and its payment are the costliest to repeat (the order step first looks
        # for the order, so a replay reuses it); a note twice is clutter on the record.
        ActionSpec("order", _order, repeatable=False, describe=describe_order),
        ActionSpec(
            "payment",
            _payment,
            repeatable=False,
            describe=None,  # planned from an order's payment: described with the order
        ),
        ActionSpec(
            "note",
            _note,
            repeatable=False,
            describe=lambda v: f"add a note titled {v.title.expression}: {v.body.text!r}",
        ),
    )
}
NOT_REPEATABLE = frozenset(kind for kind, spec in ACTIONS.items() if not spec.repeatable)


def is_repeatable(kind: str) -> bool:
    spec = ACTIONS.get(kind)
    return spec is None or spec.repeatable


def contact_fields(params: Mapping[str, Any]) -> ContactFields:
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


def _order_ids(params: Mapping[str, Any]) -> dict[str, Any]:
    """The sender's order id, shown in the step's result beside Keap's."""
    sender = params.get("sender_order_id")
    return {"sender_order_id": sender} if sender else {}


async def _payment_order_id(client: KeapActions, s: StepInput) -> int:
    """The Keap order this payment is for: its order step's result, else (that step's
    answer was lost) the contact's order holding the sender's order id."""
    result = s.earlier.get(s.params["order_step"])
    if isinstance(result, dict) and isinstance(result.get("keap_order_id"), int):
        return int(result["keap_order_id"])
    field_id, sender = s.params.get("order_id_field"), s.params.get("sender_order_id")
    found = None
    if field_id and sender:
        found = await client.find_order(s.contact, int(field_id), str(sender), ctx=s.ctx)
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
