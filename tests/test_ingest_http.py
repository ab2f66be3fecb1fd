"""POST /hooks/{source} end to end on a real SQLite file: answers, storage, dedupe."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from app.errors import Forbidden
from tests.conftest import SECRETS
from tests.support.senders import hex_signature, signature_headers

ORDER = {
    "id": 820982911946154508,
    "financial_status": "paid",
    "customer": {"email": "Jane@Example.com", "first_name": "Jane", "last_name": "Doe"},
}


def shopify_headers(
    body: bytes,
    *,
    topic: str = "orders/paid",
    webhook_id: str = "wh-1",
    secret: str = SECRETS["SHOP_SECRET"],
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        **signature_headers("shopify", secret, body),
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
    }


async def stored(relay: httpx.AsyncClient, event_id: str) -> Any:
    store = relay.app.state.store  # type: ignore[attr-defined]
    return await store.get_event(event_id)


async def test_shopify_order_is_stored_with_its_plan(relay: httpx.AsyncClient) -> None:
    body = json.dumps(ORDER).encode()
    response = await relay.post("/hooks/shop", content=body, headers=shopify_headers(body))
    assert response.status_code == 202
    answer = response.json()
    assert answer["status"] == "accepted"
    assert answer["event_id"].startswith("evt_")
    event = await stored(relay, answer["event_id"])
    assert event.status == "pending"
    assert event.event_type == "orders/paid"
    assert event.external_id == "wh-1"
    assert event.contact_email == "Jane@Example.com"
    assert event.payload == ORDER
    assert "x-shopify-hmac-sha256" not in event.headers  # signatures are not stored
    assert [s.action for s in event.steps] == [
        "contact.upsert",
        "action_set",
        "tags",
        "sequence",
        "email_template",
        "goal",
    ]
    assert event.steps[0].params == {
        "email": "Jane@Example.com",
        "given_name": "Jane",
        "family_name": "Doe",
        "opt_in_reason": "Bought from the shop",
    }
    assert event.steps[2].params == {"contact_step": 0, "ids": [101, 102]}


async def test_repeat_answers_duplicate_with_first_id(relay: httpx.AsyncClient) -> None:
    body = json.dumps(ORDER).encode()
    first = await relay.post("/hooks/shop", content=body, headers=shopify_headers(body))
    again = await relay.post("/hooks/shop", content=body, headers=shopify_headers(body))
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"event_id": first.json()["event_id"], "status": "duplicate"}


async def test_twenty_concurrent_copies_store_one_event(relay: httpx.AsyncClient) -> None:
    body = json.dumps(ORDER).encode()
    headers = shopify_headers(body, webhook_id="same-delivery")
    responses = await asyncio.gather(
        *(relay.post("/hooks/shop", content=body, headers=headers) for _ in range(20))
    )
    ids = {r.json()["event_id"] for r in responses}
    assert len(ids) == 1
    assert sorted(r.status_code for r in responses) == [200] * 19 + [202]
    counts = await relay.app.state.store.count_by_status()  # type: ignore[attr-defined]
    assert counts == {"pending": 1}


async def post_legacy_cart(relay: httpx.AsyncClient, body: bytes) -> httpx.Response:
    """POST ``body`` to the legacy-cart source (an HMAC-signed body, no event id)."""
    signature = hex_signature(SECRETS["CART_SECRET"], body)
    headers = {"Content-Type": "application/json", "X-Signature": signature}
    return await relay.post("/hooks/legacy-cart", content=body, headers=headers)


async def test_no_event_id_dedupes_on_body_hash(relay: httpx.AsyncClient) -> None:
    body = json.dumps({"event": "sale", "email": "a@example.com"}).encode()
    first = await post_legacy_cart(relay, body)
    second = await post_legacy_cart(relay, body)
    assert (first.status_code, second.status_code) == (202, 200)
    assert second.json() == {"event_id": first.json()["event_id"], "status": "duplicate"}
    event = await stored(relay, first.json()["event_id"])
    assert event.external_id is None


async def test_unmatched_event_is_stored_ignored(relay: httpx.AsyncClient) -> None:
    body = json.dumps({**ORDER, "financial_status": "pending"}).encode()
    response = await relay.post("/hooks/shop", content=body, headers=shopify_headers(body))
    assert response.status_code == 202
    event = await stored(relay, response.json()["event_id"])
    assert event.status == "ignored"
    assert event.steps == []
    assert "condition" in event.last_error


async def test_matched_route_without_email_is_dead_naming_the_selector(
    relay: httpx.AsyncClient,
) -> None:
    body = json.dumps({**ORDER, "customer": {"first_name": "No Email"}}).encode()
    response = await relay.post("/hooks/shop", content=body, headers=shopify_headers(body))
    assert response.status_code == 202
    event = await stored(relay, response.json()["event_id"])
    assert event.status == "dead"
    assert "body.customer.email" in event.last_error


async def test_signature_failures_answer_401_problem(relay: httpx.AsyncClient) -> None:
    body = json.dumps(ORDER).encode()
    good = shopify_headers(body)
    cases = [
        {k: v for k, v in good.items() if k != "X-Shopify-Hmac-SHA256"},  # missing
        shopify_headers(body, secret="wrong"),  # wrong secret
    ]
    for headers in cases:
        response = await relay.post("/hooks/shop", content=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert set(problem) >= {"type", "title", "status", "detail"}
        assert SECRETS["SHOP_SECRET"] not in response.text
    tampered = await relay.post("/hooks/shop", content=body + b" ", headers=good)
    assert tampered.status_code == 401
    counts = await relay.app.state.store.count_by_status()  # type: ignore[attr-defined]
    assert counts == {}


async def test_stale_standard_webhook_is_refused(relay: httpx.AsyncClient) -> None:
    body = json.dumps({"type": "member.created", "data": {"email": "m@example.com"}})
    wh = Webhook(SECRETS["MEMBERS_SECRET"])
    from datetime import UTC, datetime

    stale = datetime.fromtimestamp(time.time() - 600, tz=UTC)
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(stale.timestamp())),
        "webhook-signature": wh.sign("msg_1", stale, body),
        "content-type": "application/json",
    }
    response = await relay.post("/hooks/members", content=body, headers=headers)
    assert response.status_code == 401
    fresh = datetime.fromtimestamp(time.time(), tz=UTC)
    headers.update(
        {
            "webhook-timestamp": str(int(fresh.timestamp())),
            "webhook-signature": wh.sign("msg_1", fresh, body),
        }
    )
    response = await relay.post("/hooks/members", content=body, headers=headers)
    assert response.status_code == 202
    event = await stored(relay, response.json()["event_id"])
    assert event.external_id == "msg_1"
    # full_name "Ada Lovelace King" would split; here there is no name at all
    assert event.steps[0].params == {"email": "m@example.com"}


async def test_stripe_signed_event(relay: httpx.AsyncClient) -> None:
    payload = {
        "id": "evt_1",
        "type": "checkout.session.completed",
        "data": {"object": {"customer_details": {"email": "s@example.com"}}},
    }
    body = json.dumps(payload)
    signature = signature_headers("stripe", SECRETS["STRIPE_SECRET"], body.encode())
    response = await relay.post(
        "/hooks/stripe",
        content=body,
        headers={**signature, "Content-Type": "application/json"},
    )
    assert response.status_code == 202
    event = await stored(relay, response.json()["event_id"])
    assert (event.external_id, event.contact_email) == ("evt_1", "s@example.com")


async def test_thrivecart_nested_form_with_token_is_redacted(relay: httpx.AsyncClient) -> None:
    form = (
        "event=order.success&mode=live&order_id=123&thrivecart_secret=thrive-word"
        "&customer[email]=t%40example.com&customer[first_name]=Tia&items[0][sku]=A"
    )
    response = await relay.post(
        "/hooks/thrivecart",
        content=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 202, response.text
    event = await stored(relay, response.json()["event_id"])
    assert event.payload["customer"] == {"email": "t@example.com", "first_name": "Tia"}
    assert event.payload["items"] == [{"sku": "A"}]
    assert event.payload["thrivecart_secret"] == "[redacted]"
    assert event.external_id == "order.success/123/"
    wrong = await relay.post(
        "/hooks/thrivecart",
        content=form.replace("thrive-word", "nope"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert wrong.status_code == 401


async def test_membermouse_get_query_string(relay: httpx.AsyncClient) -> None:
    response = await relay.get(
        "/hooks/membermouse",
        params={
            "token": "mm-token-123",
            "event_type": "mm_member_add",
            "email": "mm@example.com",
            "first_name": "Mo",
            "member_id": "9",
        },
    )
    assert response.status_code == 202, response.text
    event = await stored(relay, response.json()["event_id"])
    assert event.payload["token"] == "[redacted]"
    assert event.steps[0].params == {"email": "mm@example.com", "given_name": "Mo"}


async def test_method_not_allowed_and_head_probe(relay: httpx.AsyncClient) -> None:
    assert (await relay.get("/hooks/shop")).status_code == 405
    assert (await relay.put("/hooks/shop", content=b"{}")).status_code == 405
    assert (await relay.head("/hooks/shop")).status_code == 200
    assert (await relay.head("/hooks/nowhere")).status_code == 404


async def test_a_405_names_the_methods_its_own_source_allows(relay: httpx.AsyncClient) -> None:
    """RFC 9110: a 405 carries ``Allow`` with the methods the resource answers: the
    source's configured ``methods``, and HEAD, which every source answers."""
    post_only = await relay.get("/hooks/shop")
    put = await relay.put("/hooks/shop", content=b"{}")
    get_and_post = await relay.put("/hooks/membermouse", content=b"{}")
    assert (post_only.status_code, put.status_code, get_and_post.status_code) == (405,) * 3
    assert post_only.headers["allow"] == put.headers["allow"] == "POST, HEAD"
    assert get_and_post.headers["allow"] == "GET, POST, HEAD"
    assert post_only.headers["content-type"] == "application/problem+json"
    assert (await relay.head("/hooks/shop")).status_code == 200  # as Allow says
    assert (await relay.put("/hooks/nowhere", content=b"{}")).status_code == 404  # no source


async def test_unknown_source_is_404_problem(relay: httpx.AsyncClient) -> None:
    response = await relay.post("/hooks/nowhere", json={"a": 1})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_allow_ips_ipv4_and_ipv6() -> None:
    from app.ingest.service import IngestService
    from tests.conftest import make_config

    service = IngestService(
        make_config(),
        store=None,  # type: ignore[arg-type]
        trusted_proxies=["10.0.0.1"],
    )
    for ip, allowed in [
        ("203.0.113.9", True),
        ("198.51.100.1", False),
        ("2001:db8::5", True),
        ("2001:db9::5", False),
        ("::ffff:203.0.113.9", True),
    ]:
        if allowed:
            service.source_for("office", "POST", {}, ip)
        else:
            with pytest.raises(Forbidden):
                service.source_for("office", "POST", {}, ip)
    # X-Forwarded-For counts only from a trusted proxy
    service.source_for("office", "POST", {"x-forwarded-for": "203.0.113.9"}, "10.0.0.1")
    with pytest.raises(Forbidden):  # an untrusted peer's X-Forwarded-For is not believed
        service.source_for("office", "POST", {"x-forwarded-for": "203.0.113.9"}, "10.0.0.2")


async def test_peer_outside_allow_ips_gets_403(relay: httpx.AsyncClient) -> None:
    response = await relay.post("/hooks/office", json={"type": "x"})
    assert response.status_code == 403
    assert (await relay.head("/hooks/office")).status_code == 403


async def test_body_errors(relay: httpx.AsyncClient) -> None:
    bad_json = await post_legacy_cart(relay, b"{not json")
    assert bad_json.status_code == 400
    body = b"<a/>"
    signature = hex_signature(SECRETS["CART_SECRET"], body)
    xml = await relay.post(
        "/hooks/legacy-cart",
        content=body,
        headers={"Content-Type": "application/xml", "X-Signature": signature},
    )
    assert xml.status_code == 415
    assert xml.headers["content-type"] == "application/problem+json"


async def test_a_body_signed_by_its_sender_is_verified_before_it_is_parsed(
    relay: httpx.AsyncClient,
) -> None:
    # Unsigned, the same unparsable body is refused for its signature: nothing was parsed.
    unsigned = await relay.post(
        "/hooks/legacy-cart", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert unsigned.status_code == 401


async def test_too_large_body_is_413(relay: httpx.AsyncClient) -> None:
    big = b"{" + b" " * (1_048_576 + 10) + b"}"
    response = await relay.post(
        "/hooks/shop", content=big, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413

    async def stream() -> Any:  # no Content-Length: refused while reading
        for _ in range(2000):
            yield b" " * 1024

    response = await relay.post(
        "/hooks/shop", content=stream(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


async def test_json_array_is_split_into_events(relay: httpx.AsyncClient) -> None:
    body = json.dumps(
        [{"event": "sale", "email": "a@example.com"}, {"event": "sale", "email": "b@example.com"}]
    ).encode()
    response = await post_legacy_cart(relay, body)
    assert response.status_code == 202
    ids = response.json()["event_ids"]
    assert len(ids) == 2
    emails = [(await stored(relay, i)).contact_email for i in ids]
    assert emails == ["a@example.com", "b@example.com"]
    # Redelivered with the keys of an element in another order: each element (no id to
    # go by) dedupes on its content, not on the bytes of the whole array.
    again = json.dumps(
        [{"event": "sale", "email": "a@example.com"}, {"email": "b@example.com", "event": "sale"}]
    ).encode()
    repeat = await post_legacy_cart(relay, again)
    assert repeat.status_code == 200
    assert repeat.json() == {"event_ids": ids, "status": "duplicate"}


async def test_woocommerce_unsigned_ping_is_answered_not_stored(relay: httpx.AsyncClient) -> None:
    response = await relay.post(
        "/hooks/woo",
        content="webhook_id=15",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert response.json() == {"status": "ping"}
    assert await relay.app.state.store.count_by_status() == {}  # type: ignore[attr-defined]
    signed_bad = await relay.post(
        "/hooks/woo",
        content="webhook_id=15",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-WC-Webhook-Signature": "x",
        },
    )
    assert signed_bad.status_code == 401


async def test_health_and_ready(relay: httpx.AsyncClient) -> None:
    assert (await relay.get("/healthz")).json() == {"status": "ok"}
    ready = await relay.get("/readyz")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["worker"]["status"] == "skipped"
    assert checks["keap_auth"]["status"] == "skipped"


async def test_metrics_count_outcomes(relay: httpx.AsyncClient) -> None:
    body = json.dumps(ORDER).encode()
    await relay.post("/hooks/shop", content=body, headers=shopify_headers(body))
    await relay.post("/hooks/shop", content=body, headers=shopify_headers(body))
    await relay.post("/hooks/shop", content=body, headers=shopify_headers(body, secret="x"))
    text = (await relay.get("/metrics")).text
    assert 'relay_events_received_total{outcome="accepted",source="shop"} 1.0' in text
    assert 'relay_events_received_total{outcome="duplicate",source="shop"} 1.0' in text
    assert 'relay_events_received_total{outcome="unauthorized",source="shop"} 1.0' in text
    assert "relay_queue_depth 1.0" in text


async def test_unexpected_failure_is_500_problem_and_logged(
    relay: httpx.AsyncClient, monkeypatch: Any, caplog: Any
) -> None:
    """The hook path runs before FastAPI's handlers, so it must answer its own crashes."""
    service = relay.app.state.ingest  # type: ignore[attr-defined]

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "receive", broken)
    body = json.dumps(ORDER).encode()
    response = await relay.post("/hooks/shop", content=body, headers=shopify_headers(body))
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 500
    assert "a bug" not in response.text  # the details stay in the log
    assert any(r.exc_info and "a bug" in str(r.exc_info[1]) for r in caplog.records)
