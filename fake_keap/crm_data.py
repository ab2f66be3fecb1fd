"""The CRM side of the fake: contacts, tags, sequences and what was triggered for whom.

Shared by the REST and XML-RPC handlers so both protocols change the same records.
Not thread-safe on its own: ``FakeKeapState`` holds its lock around every call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from fake_keap.behaviour import FakeBehaviour
from fake_keap.records import (
    ActionSetRun,
    Contact,
    EmailSent,
    GoalAchieved,
    Note,
    Order,
    Payment,
)

DuplicateOption = Literal["Email", "EmailAndName", "EmailAndNameAndCompany"]


class CrmError(Exception):
    """A refusal both protocols can express: an XML-RPC fault or a REST status."""

    fault_code: int = 3
    fault_kind: str = "Unexpected"
    http_status: int = 500

    @property
    def fault_string(self) -> str:
        return f"[{self.fault_kind}]{self}"


class RecordNotFound(CrmError):
    fault_code, fault_kind, http_status = 5, "RecordNotFound", 404


class LoadingError(CrmError):
    fault_code, fault_kind, http_status = 6, "Loading", 404


class InvalidParameter(CrmError):
    fault_code, fault_kind, http_status = 12, "InvalidParameter", 400


@dataclass(frozen=True)
class ContactFields:
    """Fields an upsert sets; None leaves the stored value as it is."""

    email: str
    given_name: str | None = None
    family_name: str | None = None
    phone: str | None = None
    company: str | None = None
    company_id: int | None = None
    opt_in_reason: str | None = None
    custom_fields: dict[int, object] | None = None


def _require_known(kind: str, value: int, known: frozenset[int] | None) -> None:
    if value <= 0 or (known is not None and value not in known):
        raise RecordNotFound(f"Unable to find {kind} for Id:{value}")


class CrmData:
    def __init__(self) -> None:
        self.contacts: dict[int, Contact] = {}
        self.tags: dict[int, set[int]] = {}
        self.sequences: dict[int, set[tuple[int, int]]] = {}
        self.emails_sent: list[EmailSent] = []
        self.goals_achieved: list[GoalAchieved] = []
        self.action_set_runs: list[ActionSetRun] = []
        self.companies: dict[int, str] = {}
        self.orders: dict[int, Order] = {}
        self.payments: list[Payment] = []
        self.notes: list[Note] = []
        self._ids_by_email: dict[str, list[int]] = {}
        self._next_id = 1

    def contact(self, contact_id: int) -> Contact:
        found = self.contacts.get(contact_id)
        if found is None:
            raise RecordNotFound(f"Unable to perform update. Record not found for Id:{contact_id}")
        return found

    def find_by_email(self, email: str) -> list[Contact]:
        return [self.contacts[i] for i in self._ids_by_email.get(email.strip().lower(), [])]

    def upsert_contact(
        self, fields: ContactFields, behaviour: FakeBehaviour, match: DuplicateOption = "Email"
    ) -> tuple[Contact, bool]:
        """Update the contact that matches on ``match``, or create one; True when created."""
        email = fields.email.strip()
        if "@" not in email:
            raise InvalidParameter(f"Invalid email address: {email!r}")
        if fields.company_id is not None:
            if fields.company_id not in self.companies:
                raise InvalidParameter(f"Company {fields.company_id} does not exist")
            fields = replace(fields, company=self.companies[fields.company_id])
        known_fields = behaviour.known_custom_field_ids
        for field_id in fields.custom_fields or {}:
            if known_fields is not None and field_id not in known_fields:
                raise InvalidParameter(f"Custom field {field_id} does not exist")
        existing = next((c for c in self.find_by_email(email) if _same(c, fields, match)), None)
        if existing is None:
            contact = Contact(id=self._next_id, email=email)
            self._next_id += 1
            self._ids_by_email.setdefault(email.lower(), []).append(contact.id)
        else:
            contact = existing
        contact = _apply(contact, fields)
        self.contacts[contact.id] = contact
        return contact, existing is None

    def delete_contact(self, contact_id: int) -> None:
        """As a user deleting the contact in Keap: later calls naming its id answer 404
        (``contact``), and an upsert by its email makes a new contact with a new id."""
        contact = self.contact(contact_id)
        del self.contacts[contact_id]
        self._ids_by_email.get(contact.email.lower(), []).remove(contact_id)
        self.tags.pop(contact_id, None)
        self.sequences.pop(contact_id, None)

    def add_tags(self, contact_id: int, tag_ids: Sequence[int], behaviour: FakeBehaviour) -> None:
        self.contact(contact_id)
        for tag_id in tag_ids:
            _require_known("tag", tag_id, behaviour.known_tag_ids)
        self.tags.setdefault(contact_id, set()).update(tag_ids)

    def apply_tags(
        self, contact_id: int, tag_ids: Sequence[int], behaviour: FakeBehaviour
    ) -> dict[int, bool]:
        """REST's tag add: the tags that exist are applied, the others reported, per tag."""
        self.contact(contact_id)
        known = behaviour.known_tag_ids
        applied = {tag_id: tag_id > 0 and (known is None or tag_id in known) for tag_id in tag_ids}
        self.tags.setdefault(contact_id, set()).update(t for t, ok in applied.items() if ok)
        return applied

    def all_companies(self) -> list[tuple[int, str]]:
        return sorted(self.companies.items())

    def create_company(self, name: str) -> int:
        company_id = 1000 + len(self.companies)
        self.companies[company_id] = name
        return company_id

    def remove_tags(
        self, contact_id: int, tag_ids: Iterable[int], behaviour: FakeBehaviour
    ) -> None:
        self.contact(contact_id)
        tag_ids = list(tag_ids)
        for tag_id in tag_ids:
            _require_known("tag", tag_id, behaviour.known_tag_ids)
        self.tags.get(contact_id, set()).difference_update(tag_ids)

    def change_sequence(
        self,
        contact_id: int,
        campaign_id: int | None,
        sequence_id: int,
        behaviour: FakeBehaviour,
        *,
        add: bool,
    ) -> None:
        """Add to (or remove from) a campaign sequence; XML-RPC names no campaign."""
        self.contact(contact_id)
        pair = _resolve_sequence(campaign_id, sequence_id, behaviour.known_sequences)
        members = self.sequences.setdefault(contact_id, set())
        if add:
            members.add(pair)
        else:
            members.discard(pair)

    def send_email(
        self,
        contact_ids: Sequence[int],
        template_id: int,
        behaviour: FakeBehaviour,
        now: float,
        user_id: int | None = None,
    ) -> None:
        _require_known("template", template_id, behaviour.known_template_ids)
        for contact_id in contact_ids:
            self.contact(contact_id)
        self.emails_sent.extend(EmailSent(c, template_id, now, user_id) for c in contact_ids)

    def achieve_goal(
        self,
        integration: str,
        call_name: str,
        contact_id: int,
        behaviour: FakeBehaviour,
        now: float,
    ) -> bool:
        """False when strict goals do not include this one, as Keap reports success=false."""
        self.contact(contact_id)
        known = behaviour.known_goals
        if known is not None and (integration, call_name) not in known:
            return False
        self.goals_achieved.append(GoalAchieved(integration, call_name, contact_id, now))
        return True

    def run_action_set(
        self, contact_id: int, action_set_id: int, behaviour: FakeBehaviour, now: float
    ) -> bool:
        """False when the action set ran but one of its actions failed."""
        self.contact(contact_id)
        _require_known("action set", action_set_id, behaviour.known_action_set_ids)
        self.action_set_runs.append(ActionSetRun(contact_id, action_set_id, now))
        return action_set_id not in behaviour.action_sets_reporting_errors

    def create_order(self, order: Order, behaviour: FakeBehaviour) -> Order:
        """Refuses what Keap's v2 createOrder refuses: an unknown contact, a product item
        with no or an unknown product id (CreateOrderItemRequest: "Must be a valid product
        id"), a quantity under 1, an unknown order custom field."""
        self.contact(order.contact_id)
        products = behaviour.products
        for item in order.items:
            if item.quantity < 1:
                raise InvalidParameter("quantity must be greater than or equal to 1")
            if item.item_type not in ("PRODUCT", "SUBSCRIPTION"):
                continue
            if item.product_id is None:
                raise InvalidParameter("product_id is required for item_type PRODUCT")
            if item.product_id <= 0 or (products is not None and item.product_id not in products):
                raise InvalidParameter(f"Invalid product id: {item.product_id}")
        known_fields = behaviour.known_order_custom_field_ids
        for field_id in order.custom_fields:
            if known_fields is not None and field_id not in known_fields:
                raise InvalidParameter(f"Custom field {field_id} does not exist")
        created = replace(order, id=self._next_order_id())
        self.orders[created.id] = created
        return created

    def _next_order_id(self) -> int:
        return 5000 + len(self.orders) + 1

    def order(self, order_id: int) -> Order:
        found = self.orders.get(order_id)
        if found is None:
            raise RecordNotFound(f"Order {order_id} not found")
        return found

    def paid_cents(self, order_id: int) -> int:
        return sum(p.amount_cents for p in self.payments if p.order_id == order_id)

    def add_payment(
        self,
        order_id: int,
        amount_cents: int,
        payment_type: str,
        payment_time: str | None,
        behaviour: FakeBehaviour,
    ) -> Payment:
        """A manual payment record: its type must be one configured in the app, and it
        may not exceed the order's balance (RestCreatePaymentRequest)."""
        order = self.order(order_id)
        if payment_type not in behaviour.manual_payment_types:
            raise InvalidParameter(f"Invalid payment method type: {payment_type}")
        if amount_cents < 0 or amount_cents > order.total_cents - self.paid_cents(order_id):
            raise InvalidParameter(
                "payment_amount must not exceed the current balance of the order"
            )
        payment = Payment(
            len(self.payments) + 1, order_id, amount_cents, payment_type, payment_time
        )
        self.payments.append(payment)
        return payment

    def add_note(self, contact_id: int, title: str | None, text: str | None, user_id: int) -> Note:
        self.contact(contact_id)
        if not title:
            raise InvalidParameter("A value for either title or type is required")
        note = Note(len(self.notes) + 1, contact_id, title, text, user_id)
        self.notes.append(note)
        return note


def _same(contact: Contact, fields: ContactFields, match: DuplicateOption) -> bool:
    def equal(a: str | None, b: str | None) -> bool:
        return (a or "").strip().lower() == (b or "").strip().lower()

    if match == "Email":
        return True
    names = equal(contact.given_name, fields.given_name) and equal(
        contact.family_name, fields.family_name
    )
    if match == "EmailAndName":
        return names
    return names and equal(contact.company, fields.company)


def _apply(contact: Contact, fields: ContactFields) -> Contact:
    changes: dict[str, object] = {
        name: value
        for name in ("given_name", "family_name", "phone", "company", "company_id", "opt_in_reason")
        if (value := getattr(fields, name)) is not None
    }
    if fields.custom_fields:
        changes["custom_fields"] = {**contact.custom_fields, **fields.custom_fields}
    return replace(contact, **changes)  # type: ignore[arg-type]


def _resolve_sequence(
    campaign_id: int | None, sequence_id: int, known: frozenset[tuple[int, int]] | None
) -> tuple[int, int]:
    if sequence_id <= 0 or (campaign_id is not None and campaign_id <= 0):
        raise LoadingError("Error loading follow-up sequence")
    if known is None:
        return (campaign_id or 0, sequence_id)
    for pair in sorted(known):
        if pair[1] == sequence_id and campaign_id in (None, pair[0]):
            return pair
    raise LoadingError("Error loading follow-up sequence")
