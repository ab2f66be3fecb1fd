"""What the fake Infusionsoft remembers: contacts and the outcome of every call.

Records are frozen so the state can hand them to another thread without copying.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AuthKind = Literal["key", "bearer", "basic", "none"]
FailureStatus = int | Literal["drop"]

# Operation names of the wire contract, plus the extra XML-RPC methods the fake answers.
XMLRPC_OPERATIONS: dict[str, str] = {
    "ContactService.addWithDupCheck": "contact.upsert_xmlrpc",
    "ContactService.findByEmail": "contact.find_xmlrpc",
    "ContactService.addToGroup": "tags.add_xmlrpc",
    "ContactService.removeFromGroup": "tags.remove_xmlrpc",
    "ContactService.addToCampaign": "sequence.add_xmlrpc",
    "ContactService.removeFromCampaign": "sequence.remove_xmlrpc",
    "ContactService.runActionSequence": "action_set.run",
    "APIEmailService.sendEmail": "email_template.send_xmlrpc",
    "FunnelService.achieveGoal": "goal.achieve_xmlrpc",
}
TOKEN_OPERATION = "oauth.refresh"


@dataclass(frozen=True)
class Contact:
    id: int
    email: str
    given_name: str | None = None
    family_name: str | None = None
    phone: str | None = None
    company: str | None = None  # the company's name (XML-RPC's Company field)
    company_id: int | None = None  # the company record it refers to (REST's company.id)
    opt_in_reason: str | None = None
    # Replaced, never mutated, on update: safe to share across threads.
    custom_fields: dict[int, object] = field(default_factory=dict)


@dataclass(frozen=True)
class EmailSent:
    contact_id: int
    template_id: int
    at: float
    user_id: int | None = None  # on whose behalf (REST v2); XML-RPC names none


@dataclass(frozen=True)
class GoalAchieved:
    integration: str
    call_name: str
    contact_id: int
    at: float


@dataclass(frozen=True)
class ActionSetRun:
    contact_id: int
    action_set_id: int
    at: float


@dataclass(frozen=True)
class OrderItem:
    """One line of an order; amounts in cents (CurrencyValue's smallest unit)."""

    item_type: str
    quantity: int
    price_cents: int
    product_id: int | None = None
    name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Order:
    id: int
    contact_id: int
    title: str
    order_time: str
    order_type: str
    items: tuple[OrderItem, ...]
    custom_fields: dict[int, object] = field(default_factory=dict)

    @property
    def total_cents(self) -> int:
        return sum(item.price_cents * item.quantity for item in self.items)


@dataclass(frozen=True)
class Payment:
    id: int
    order_id: int
    amount_cents: int
    payment_type: str
    payment_time: str | None


@dataclass(frozen=True)
class Note:
    id: int
    contact_id: int
    title: str | None
    text: str | None
    user_id: int


@dataclass(frozen=True)
class RequestRecord:
    """One request as the fake saw it; ``status`` is 0 when the connection was dropped."""

    at: float
    operation: str
    auth: AuthKind
    status: int
    throttled: bool
    method: str
    path: str

    @property
    def dropped(self) -> bool:
        return self.status == 0
