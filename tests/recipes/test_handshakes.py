"""What breaks naive receivers: URL probes, WooCommerce's unsigned ping, test orders,
events without an email or that are not what their name says, combined names, batched
arrays, tokens in URLs and bodies."""

from __future__ import annotations

import json

import pytest

from tests.recipes.conftest import (
    RelayFactory,
    post_sample,
    send,
    stored_counts,
    stored_event,
)
from tests.recipes.delivery import TEST_ENV, Delivery, as_sender_sends, sample_body


async def test_thrivecart_head_and_post_probes_are_answered_not_stored(
    recipe_relay: RelayFactory,
) -> None:
    async with recipe_relay("thrivecart") as relay:
        head = await relay.head("/hooks/thrivecart")
        # ThriveCart's save-time POST: no event, and no secret word either.
        post = await relay.post(
            "/hooks/thrivecart", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert head.status_code == 200
        assert post.status_code == 200
        assert post.json() == {"status": "ping"}
        assert await stored_counts(relay) == {}
        # ...and a real order right after is taken.
        order = await send(relay, as_sender_sends("thrivecart", "purchase.form", "order.success"))
        assert order.status_code == 202


async def test_woocommerce_save_ping_gets_200_and_is_not_stored(recipe_relay: RelayFactory) -> None:
    async with recipe_relay("woocommerce") as relay:
        ping = await relay.post(
            "/hooks/woocommerce",
            content=b"webhook_id=12",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "User-Agent": "WooCommerce/9.6.0 Hookshot (WordPress/6.7.2)",
            },
        )
        assert ping.status_code == 200
        assert ping.json() == {"status": "ping"}
        assert await stored_counts(relay) == {}


@pytest.mark.parametrize(
    ("sender", "sample", "event_type"),
    [
        # Test orders
        ("thrivecart", "purchase_test_mode.form", "order.success"),  # mode=test
        ("shopify", "purchase_test_mode.json", "orders/paid"),  # test: true
        ("stripe", "purchase_test_mode.json", "checkout.session.completed"),  # livemode false
        ("gumroad", "purchase_test_mode.form", "sale"),  # test=true
        # Events without an email
        ("thrivecart", "purchase_no_email.form", "order.success"),
        ("stripe", "cancellation_no_email.json", "customer.subscription.deleted"),
        # Not a purchase, whatever the event's name. ClickFunnels' order.completed is "Sent
        # when a one-time order was paid or a subscription order's service period has
        # concluded" (https://developers.myclickfunnels.com/docs/webhook-event-types):
        # this one is a subscription ending.
        ("clickfunnels", "subscription_period_ended.json", "order.completed"),
        # Not paid yet: a Checkout Session paid by a delayed method (here ACH debit)
        # completes with payment_status "unpaid"; fulfil on
        # checkout.session.async_payment_succeeded (https://docs.stripe.com/checkout/
        # fulfillment?payment-ui=stripe-hosted#immediate-versus-delayed-payment-methods).
        ("stripe", "purchase_delayed_unpaid.json", "checkout.session.completed"),
    ],
)
async def test_events_that_must_run_nothing_are_stored_ignored(
    recipe_relay: RelayFactory, sender: str, sample: str, event_type: str
) -> None:
    async with recipe_relay(sender) as relay:
        headers = {"X-Shopify-Webhook-Id": "test-order-1"} if sender == "shopify" else {}
        event = await post_sample(relay, sender, sample, event_type, headers)
        assert (event.status, event.event_type, event.steps) == ("ignored", event_type, [])
        assert event.contact_email is None
        assert event.last_error.startswith(f"no route's condition matched event {event_type!r} (")


async def test_ignored_reason_names_the_condition_that_failed(recipe_relay: RelayFactory) -> None:
    async with recipe_relay("thrivecart") as relay:
        delivery = as_sender_sends("thrivecart", "purchase_no_email.form", "order.success")
        event = await stored_event(relay, (await send(relay, delivery)).json()["event_id"])
        assert "body.customer.email" in event.last_error


async def test_combined_name_is_split_into_first_and_last(recipe_relay: RelayFactory) -> None:
    one_word = sample_body("gumroad", "purchase.form").replace(
        b"full_name=Jules+Martin", b"full_name=Cher"
    )
    async with recipe_relay("teachable", "gumroad") as relay:
        sale = await send(relay, as_sender_sends("teachable", "purchase.json", "Sale.created"))
        event = await stored_event(relay, sale.json()["event_id"])
        upsert = event.steps[0].params
        assert (upsert["given_name"], upsert["family_name"]) == ("Ada", "Lovelace King")

        delivery = as_sender_sends("gumroad", "purchase.form", "sale")
        single = Delivery(delivery.method, delivery.url, one_word, delivery.headers)
        event = await stored_event(relay, (await send(relay, single)).json()["event_id"])
        assert event.steps[0].params == {"email": "jules.martin@example.com", "given_name": "Cher"}


async def test_teachable_batch_is_one_event_per_element(recipe_relay: RelayFactory) -> None:
    async with recipe_relay("teachable") as relay:
        response = await send(
            relay, as_sender_sends("teachable", "signup_batch.json", "User.created")
        )
        assert response.status_code == 202, response.text
        events = [await stored_event(relay, i) for i in response.json()["event_ids"]]
        assert [(e.external_id, e.contact_email) for e in events] == [
            ("31339002", "alan.t@example.com"),
            ("31339003", "joan.clarke@example.com"),
        ]
        assert events[1].steps[0].params["family_name"] == "Clarke"


async def test_tokens_are_checked_and_never_stored(recipe_relay: RelayFactory) -> None:
    async with recipe_relay("thrivecart", "samcart", "membermouse") as relay:
        thrive = await send(relay, as_sender_sends("thrivecart", "purchase.form", "order.success"))
        samcart = await send(relay, as_sender_sends("samcart", "purchase.json", "Order"))
        mm = await send(relay, as_sender_sends("membermouse", "signup.query", "mm_member_add"))
        for response in (thrive, samcart, mm):
            assert response.status_code == 202, response.text
            event = await stored_event(relay, response.json()["event_id"])
            stored = json.dumps([event.payload, event.headers])
            assert not any(secret in stored for secret in TEST_ENV.values())
        thrive_event = await stored_event(relay, thrive.json()["event_id"])
        assert thrive_event.payload["thrivecart_secret"] == "[redacted]"
        mm_event = await stored_event(relay, mm.json()["event_id"])
        assert mm_event.payload["token"] == "[redacted]"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("/hooks/samcart", "the user forgot ?token= in the Notify URL"),
        ("/hooks/samcart?token=wrong", "a wrong token"),
    ],
)
async def test_missing_or_wrong_url_token_is_refused(
    recipe_relay: RelayFactory, url: str, why: str
) -> None:
    async with recipe_relay("samcart") as relay:
        body = sample_body("samcart", "purchase.json")
        response = await relay.post(url, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 401, why
        assert await stored_counts(relay) == {}


async def test_payload_without_ids_dedupes_on_its_body_not_on_null(
    recipe_relay: RelayFactory,
) -> None:
    """SamCart's key is built from order.id and product.id: without them, two different
    posts must stay two events (the body hash), never collapse into "Order/null/null"."""
    base = json.loads(sample_body("samcart", "purchase.json"))
    async with recipe_relay("samcart") as relay:
        ids = []
        for email in ("a@example.com", "b@example.com"):
            body = {**base, "order": {}, "product": {}, "customer": {"email": email}}
            delivery = as_sender_sends("samcart", "purchase.json", "Order")
            request = Delivery(
                delivery.method, delivery.url, json.dumps(body).encode(), delivery.headers
            )
            response = await send(relay, request)
            assert response.status_code == 202, response.text
            ids.append(response.json()["event_id"])
        events = [await stored_event(relay, i) for i in ids]
        assert [e.external_id for e in events] == [None, None]
        assert [e.contact_email for e in events] == ["a@example.com", "b@example.com"]


async def test_pmpro_json_under_a_malformed_content_type_is_read(
    recipe_relay: RelayFactory,
) -> None:
    async with recipe_relay("pmpro") as relay:
        for content_type in (": application/json", "application/x-www-form-urlencoded"):
            delivery = as_sender_sends(
                "pmpro", "purchase.json", "pmpro_after_checkout", {"Content-Type": content_type}
            )
            response = await send(relay, delivery)
            assert response.status_code in (200, 202), response.text
            event = await stored_event(relay, response.json()["event_id"])
            assert event.payload["order"]["code"] == "A1B2C3D4E5"
