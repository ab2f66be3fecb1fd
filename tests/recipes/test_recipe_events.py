"""Every recipe, every event kind: the sample posted exactly as the sender posts it is
stored once with the right event type and id, and planned as the right Infusionsoft
contact upsert and actions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.recipes.conftest import RelayFactory, send, stored_event
from tests.recipes.delivery import as_sender_sends

CUSTOMER, REFUNDED, CANCELLED, MEMBER = 111111, 222222, 333333, 444444
BOUGHT = [("tags", [CUSTOMER])]
REFUND = [("remove_tags", [CUSTOMER]), ("tags", [REFUNDED])]
CANCEL = [("tags", [CANCELLED])]
# A refund route also notes on the contact what was refunded (docs/orders.md).
REFUND_NOTES = {
    "thrivecart": "Refunded 197.00 USD for Growth Course (ThriveCart order 4471)",
    "samcart": "Refunded 97.00 for Copywriting Bootcamp (SamCart order 6310042)",
    "shopify": "Order #1042 refunded (64.00 USD): Damaged in transit",
    "woocommerce": "Order 727 refunded (89.00 EUR): Wrong size",
    "stripe": "Charge ch_3Qa2Bb3Cc refunded: 4900 usd (Stripe amounts are in cents)",
    "lemonsqueezy": "Order 1057 (Icon Pack Pro) refunded",
    "gumroad": "Refunded Lightroom Presets Vol. 2 (Gumroad sale Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2==)",
}
JOINED = [("tags", [MEMBER])]


@dataclass(frozen=True)
class Case:
    sender: str
    sample: str
    event_type: str
    external_id: str | None  # None: no id in the payload, deduped on the body's hash
    contact: dict[str, str]
    actions: list[tuple[str, list[int]]]
    headers: dict[str, str] = field(default_factory=dict)
    note: str | None = None  # the text of the note the route adds, from the sample

    @property
    def id(self) -> str:
        return f"{self.sender}/{self.sample}"


def person(email: str, given: str | None = None, family: str | None = None, **more: str) -> dict:
    fields = {"email": email, "given_name": given, "family_name": family, **more}
    return {k: v for k, v in fields.items() if v is not None}


def shopify_id(n: int) -> dict[str, str]:
    return {"X-Shopify-Webhook-Id": f"b54557e4-bdd9-4b37-8a5f-{n:012d}"}


CASES = [
    # ThriveCart: form with nested keys (and its JSON shape), the secret word in the body
    Case(
        "thrivecart",
        "purchase.form",
        "order.success",
        "order.success/4471/",
        person("maria.lopez@example.com", "Maria", "Lopez"),
        BOUGHT,
    ),
    Case(
        "thrivecart",
        "refund.form",
        "order.refund",
        "order.refund/4471/",
        person("maria.lopez@example.com"),
        REFUND,
        note=REFUND_NOTES["thrivecart"],
    ),
    Case(
        "thrivecart",
        "cancellation.json",
        "order.subscription_cancelled",
        "order.subscription_cancelled/4502/9001",
        person("sam.okafor@example.com"),
        CANCEL,
    ),
    # SamCart: JSON, ?token=, one post per product
    Case(
        "samcart",
        "purchase.json",
        "Order",
        "Order/6310042/44120",
        person("priya.n@example.com", "Priya", "Natarajan", phone="+14155550199"),
        BOUGHT,
    ),
    Case(
        "samcart",
        "refund.json",
        "Refund",
        "Refund/6310042/44120",
        person("priya.n@example.com"),
        REFUND,
        note=REFUND_NOTES["samcart"],
    ),
    Case(
        "samcart",
        "cancellation.json",
        "Cancel",
        "Cancel/6299310/44777",
        person("priya.n@example.com"),
        CANCEL,
    ),
    # Kajabi: the offer/form webhook (two shapes) and API hooks
    Case(
        "kajabi",
        "purchase.json",
        "purchase",
        "80412231",
        person("lena.fischer@example.com", "Lena", "Fischer"),
        BOUGHT,
    ),
    Case(
        "kajabi",
        "signup.json",
        "form_submission",
        "b7c2e0d4-6a51-4f3e-9d2e-0f6a1f1c2d3e",
        person("tom.baker@example.com", "Tom", "Baker"),
        JOINED,
    ),
    # The older form of the offer webhook: "Header fields" id, event "purchase.created",
    # then member_email, member_first_name... (the earlier version of
    # https://help.kajabi.com/hc/en-us/articles/22340045045659)
    Case(
        "kajabi",
        "purchase_created.json",
        "purchase.created",
        "80412240",
        person("lena.fischer@example.com", "Lena", "Fischer"),
        BOUGHT,
    ),
    # API hooks: {id, event, payload: [JSON:API resources]}, the email and one name field
    # in the customers / form_submissions resource. Bodies from
    # https://developers.kajabi.com/api-reference/webhooks/purchase-sample and
    # https://developers.kajabi.com/api-reference/webhooks/form-submission-sample
    Case(
        "kajabi",
        "purchase_api_hook.json",
        "purchase",
        "5d2f8c41a9e07b36c1f4d8e2a7b90c13",
        person("lena.fischer@example.com", "Lena", "Fischer"),
        BOUGHT,
    ),
    Case(
        "kajabi",
        "signup_api_hook.json",
        "form_submission",
        "0b7e19d4c6a25f83e1d09b4a7c62f5e8",
        person("tom.baker@example.com", "Tom", "Baker", phone="+442079460321"),
        JOINED,
    ),
    # Teachable: one name field, split into first and last
    Case(
        "teachable",
        "purchase.json",
        "Sale.created",
        "31337001",
        person("ada.king@example.com", "Ada", "Lovelace King"),
        BOUGHT,
    ),
    Case(
        "teachable",
        "refund.json",
        "Transaction.refunded",
        "31337540",
        person("ada.king@example.com"),
        REFUND,
    ),
    Case(
        "teachable",
        "cancellation.json",
        "Sale.subscription_canceled",
        "31338001",
        person("grace.hopper@example.com"),
        CANCEL,
    ),
    Case(
        "teachable",
        "signup.json",
        "User.created",
        "31339002",
        person("alan.t@example.com", "Alan", "Turing"),
        JOINED,
    ),
    # ClickFunnels 2.0: signed envelope
    Case(
        "clickfunnels",
        "purchase.json",
        "order.completed",
        "8b6f2f4e-5c1a-4d5e-9a77-1c0e2f3a4b5c",
        person("noah.reid@example.com", "Noah", "Reid", phone="+13125550177"),
        BOUGHT,
    ),
    # A subscription is bought at its first payment, its own event (order.completed comes
    # at the end of its service period): https://developers.myclickfunnels.com/docs/webhook-event-types
    Case(
        "clickfunnels",
        "subscription_first_payment.json",
        "subscription.first_payment_received",
        "3f1c9e2a-7b44-4d0e-9a61-2c8d5e7f0a13",
        person("maya.patel@example.com", "Maya", "Patel", phone="+13125550188"),
        BOUGHT,
    ),
    Case(
        "clickfunnels",
        "refund.json",
        "one_time_order.refunded",
        "1a2b3c4d-0000-4e5f-8a9b-aabbccddeeff",
        person("noah.reid@example.com"),
        REFUND,
    ),
    Case(
        "clickfunnels",
        "cancellation.json",
        "subscription.canceled",
        "9f8e7d6c-1111-4222-8333-444455556666",
        person("ivy.chen@example.com"),
        CANCEL,
    ),
    Case(
        "clickfunnels",
        "signup.json",
        "contact.created",
        "0c0c0c0c-2222-4333-8444-555566667777",
        person("omar.haddad@example.com", "Omar", "Haddad", phone="+447700900123"),
        JOINED,
    ),
    # MemberPress: {event, type, data}
    Case(
        "memberpress",
        "signup.json",
        "member-signup-completed",
        "member-signup-completed/56",
        person("olivia.brown@example.com", "Olivia", "Brown"),
        JOINED,
    ),
    Case(
        "memberpress",
        "purchase.json",
        "transaction-completed",
        "transaction-completed/1031",
        person("olivia.brown@example.com", "Olivia", "Brown"),
        BOUGHT,
    ),
    Case(
        "memberpress",
        "refund.json",
        "transaction-refunded",
        "transaction-refunded/1031",
        person("olivia.brown@example.com"),
        REFUND,
    ),
    Case(
        "memberpress",
        "cancellation.json",
        "subscription-stopped",
        "subscription-stopped/88",
        person("olivia.brown@example.com"),
        CANCEL,
    ),
    # WishList Member: form, trigger + trigger_levels[]
    Case(
        "wishlistmember",
        "signup.form",
        "add",
        "214/add/1709301234",
        person("rachel.green@example.com", "Rachel", "Green"),
        JOINED,
    ),
    Case(
        "wishlistmember",
        "cancellation.form",
        "cancel",
        "214/cancel/1709301234",
        person("rachel.green@example.com"),
        CANCEL,
    ),
    Case(
        "wishlistmember",
        "removal.form",
        "remove",
        "214/remove/1709301234,1709309999",
        person("rachel.green@example.com"),
        [("remove_tags", [MEMBER])],
    ),
    # MemberMouse: GET query strings
    Case(
        "membermouse",
        "signup.query",
        "mm_member_add",
        "mm_member_add/1287/1/",
        person("diego.morales@example.com", "Diego", "Morales", phone="+34600123456"),
        JOINED,
    ),
    Case(
        "membermouse",
        "purchase.query",
        "mm_payment_received",
        "mm_payment_received/1287//MM-20260302-0007",
        person("diego.morales@example.com", "Diego", "Morales"),
        BOUGHT,
    ),
    Case(
        "membermouse",
        "refund.query",
        "mm_refund_issued",
        "mm_refund_issued/1287//MM-20260302-0007",
        person("diego.morales@example.com"),
        [("tags", [REFUNDED])],
    ),
    Case(
        "membermouse",
        "cancellation.query",
        "mm_member_status_change",
        "mm_member_status_change/1287/2/",
        person("diego.morales@example.com"),
        [("remove_tags", [MEMBER]), ("tags", [CANCELLED])],
    ),
    # Paid Memberships Pro: JSON under a malformed Content-Type
    Case(
        "pmpro",
        "purchase.json",
        "pmpro_after_checkout",
        "pmpro_after_checkout/A1B2C3D4E5/success",
        person("kenji.w@example.com", "Kenji", "Watanabe"),
        BOUGHT,
    ),
    Case(
        "pmpro",
        "refund.json",
        "pmpro_updated_order",
        "pmpro_updated_order/A1B2C3D4E5/refunded",
        person("kenji.w@example.com"),
        REFUND,
    ),
    Case(
        "pmpro",
        "cancellation.json",
        "pmpro_after_change_membership_level",
        None,
        person("kenji.w@example.com"),
        [("remove_tags", [CUSTOMER]), ("tags", [CANCELLED])],
    ),
    # Gumroad: form; a sale ping has no resource_name; full_name is split
    Case(
        "gumroad",
        "purchase.form",
        "sale",
        "sale/Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2==",
        person("jules.martin@example.com", "Jules", "Martin"),
        BOUGHT,
    ),
    Case(
        "gumroad",
        "refund.form",
        "refund",
        "refund/Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2==",
        person("jules.martin@example.com"),
        REFUND,
        note=REFUND_NOTES["gumroad"],
    ),
    Case(
        "gumroad",
        "cancellation.form",
        "cancellation",
        "cancellation/Sub7Hh6Gg5Ff4Ee3Dd2Cc1==",
        person("jules.martin@example.com"),
        CANCEL,
    ),
    # Shopify: signed; deduped on topic/id/updated_at (a refunded order's orders/updated:
    # topic/id/refunded/refund ids), not the unsigned webhook id
    Case(
        "shopify",
        "purchase.json",
        "orders/paid",
        "orders/paid/5880123456789/2026-03-02T10:15:12-05:00",
        person("emma.wilson@example.com", "Emma", "Wilson", phone="+16135550111"),
        BOUGHT,
        shopify_id(1),
    ),
    Case(
        "shopify",
        "refund.json",
        "orders/updated",
        "orders/updated/5880123456789/refunded/998877001",  # its refund ids, not updated_at
        person("emma.wilson@example.com"),
        REFUND,
        shopify_id(2),
        note=REFUND_NOTES["shopify"],
    ),
    Case(
        "shopify",
        "cancellation.json",
        "orders/cancelled",
        "orders/cancelled/5880123999999/2026-03-03T12:00:05-05:00",
        person("emma.wilson@example.com"),
        CANCEL,
        shopify_id(3),
    ),
    Case(
        "shopify",
        "signup.json",
        "customers/create",
        "customers/create/7412369800000/2026-03-02T09:00:00-05:00",
        person("liam.nguyen@example.com", "Liam", "Nguyen"),
        JOINED,
        shopify_id(4),
    ),
    # WooCommerce: signed; deduped on id/status/modified (a refunded order's order.updated:
    # its refund ids), not the delivery id
    Case(
        "woocommerce",
        "purchase.json",
        "order.created",
        "order.created/727/processing/2026-03-02T13:05:03",
        person(
            "sofia.rossi@example.com",
            "Sofia",
            "Rossi",
            phone="+390212345678",
            company="Rossi Design",
        ),
        BOUGHT,
    ),
    Case(
        "woocommerce",
        "refund.json",
        "order.updated",
        "order.updated/727/refunded/731",  # its refund ids, not the modification time
        person("sofia.rossi@example.com"),
        REFUND,
        note=REFUND_NOTES["woocommerce"],
    ),
    Case(
        "woocommerce",
        "cancellation.json",
        "order.updated",
        "order.updated/740/cancelled/2026-03-06T09:00:00",
        person("sofia.rossi@example.com"),
        CANCEL,
    ),
    Case(
        "woocommerce",
        "signup.json",
        "customer.created",
        "customer.created/32//2026-03-07T15:00:00",
        person("marco.bianchi@example.com", "Marco", "Bianchi"),
        JOINED,
    ),
    # Stripe: signed; customer_details.name is split
    Case(
        "stripe",
        "purchase.json",
        "checkout.session.completed",
        "evt_1Qa2Bb3Cc4Dd5Ee",
        person("chloe.martin@example.com", "Chloé", "Martin-Dubois", phone="+33612345678"),
        BOUGHT,
    ),
    # A delayed payment method (ACH debit) is paid days after the session completes:
    # https://docs.stripe.com/checkout/fulfillment?payment-ui=stripe-hosted
    # (#immediate-versus-delayed-payment-methods)
    Case(
        "stripe",
        "purchase_async_succeeded.json",
        "checkout.session.async_payment_succeeded",
        "evt_1Qb7Kq2RtX0aB2",
        person("owen.baker@example.com", "Owen", "Baker"),
        BOUGHT,
    ),
    Case(
        "stripe",
        "refund.json",
        "charge.refunded",
        "evt_1Qa2Bb3Cc4Dd6Ff",
        person("chloe.martin@example.com"),
        REFUND,
        note=REFUND_NOTES["stripe"],
    ),
    Case(
        "stripe",
        "cancellation.json",
        "customer.subscription.deleted",
        "evt_1Qa2Bb3Cc4Dd7Gg",
        person("chloe.martin@example.com"),
        CANCEL,
    ),
    Case(
        "stripe",
        "signup.json",
        "customer.created",
        "evt_1Qa2Bb3Cc4Dd9Ii",
        person("ravi.shah@example.com", "Ravi", "Shah", phone="+919812345678"),
        JOINED,
    ),
    # Paddle Billing: signed; transactions read custom_data.email
    Case(
        "paddle",
        "signup.json",
        "customer.created",
        "evt_01hv8x2aa1b2c3d4e5f6g7h8j9",
        person("hana.sato@example.com", "Hana", "Sato"),
        JOINED,
    ),
    Case(
        "paddle",
        "purchase.json",
        "transaction.completed",
        "evt_01hv8x3bb1b2c3d4e5f6g7h8j9",
        person("hana.sato@example.com"),
        BOUGHT,
    ),
    Case(
        "paddle",
        "cancellation.json",
        "subscription.canceled",
        "evt_01hv9z9cc1b2c3d4e5f6g7h8j9",
        person("hana.sato@example.com"),
        CANCEL,
    ),
    # Lemon Squeezy: signed JSON:API
    Case(
        "lemonsqueezy",
        "purchase.json",
        "order_created",
        "order_created/1057001",
        person("mateo.alvarez@example.com", "Mateo", "Álvarez"),
        BOUGHT,
    ),
    Case(
        "lemonsqueezy",
        "refund.json",
        "order_refunded",
        "order_refunded/1057001",
        person("mateo.alvarez@example.com"),
        REFUND,
        note=REFUND_NOTES["lemonsqueezy"],
    ),
    Case(
        "lemonsqueezy",
        "cancellation.json",
        "subscription_cancelled",
        "subscription_cancelled/55012",
        person("mateo.alvarez@example.com"),
        CANCEL,
    ),
    # Thinkific: signed; resource + action
    Case(
        "thinkific",
        "purchase.json",
        "order.created",
        "20260302170000123456789",
        person("nadia.karim@example.com", "Nadia", "Karim"),
        BOUGHT,
    ),
    Case(
        "thinkific",
        "refund.json",
        "order_transaction.refunded",
        "20260304090000123456789",
        person("nadia.karim@example.com"),
        REFUND,
    ),
    # Thinkific spells the topic "cancelled":
    # https://support.thinkific.dev/hc/en-us/articles/4422658311703
    Case(
        "thinkific",
        "cancellation.json",
        "subscription.cancelled",
        "20260306100000123456789",
        person("yusuf.demir@example.com"),
        CANCEL,
    ),
    Case(
        "thinkific",
        "signup.json",
        "user.signup",
        "20260307120000123456789",
        person("zara.ali@example.com", "Zara", "Ali"),
        JOINED,
    ),
]


def planned_actions(event: Any) -> list[tuple[str, Any]]:
    return [(step.action, step.params) for step in event.steps[1:]]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_sample_is_stored_and_planned(recipe_relay: RelayFactory, case: Case) -> None:
    async with recipe_relay(case.sender) as relay:
        delivery = as_sender_sends(case.sender, case.sample, case.event_type, case.headers)
        response = await send(relay, delivery)
        assert response.status_code == 202, response.text
        event_id = response.json()["event_id"]

        event = await stored_event(relay, event_id)
        assert (event.source, event.event_type) == (case.sender, case.event_type)
        assert event.external_id == case.external_id
        assert event.status == "pending", event.last_error
        assert event.contact_email == case.contact["email"]
        assert event.steps[0].action == "contact.upsert"
        assert event.steps[0].params == case.contact
        actions = planned_actions(event)
        assert [a for a in actions if a[0] != "note"] == [
            (kind, {"contact_step": 0, "ids": ids}) for kind, ids in case.actions
        ]
        assert [params["text"] for kind, params in actions if kind == "note"] == (
            [case.note] if case.note else []
        )

        # The sender's retry (new timestamp, signature or delivery id) is the same event.
        retry = as_sender_sends(case.sender, case.sample, case.event_type, case.headers)
        again = await send(relay, retry)
        assert again.status_code == 200, again.text
        assert again.json() == {"event_id": event_id, "status": "duplicate"}


def test_every_recipe_route_has_a_sample() -> None:
    from app.recipes.catalog import load_all

    covered = {(case.sender, case.event_type) for case in CASES}
    for recipe in load_all():
        for route in recipe.routes:
            matched = any(
                sender == recipe.name and (route.event == event or route.event.endswith("*"))
                for sender, event in covered
            )
            assert matched, f"{recipe.name}-{route.kind} ({route.event}) has no sample"
