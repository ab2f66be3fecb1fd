"""A real ``relay serve`` that used every kind of secret logs none of them, and no email
whole: signed and token-carrying webhooks, the Keap API key, the admin token."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config.loader import parse_config
from app.ingest.schemes import sign_request
from fake_keap.server import FakeKeapServer
from tests.support.processes import free_port, keap_env, relay_env, start_relay, stop

API_KEY = "kp-LIVE-7f3a9c2e1b4d-api-key"
ADMIN_TOKEN = "adm-9Xq2-vT7p-never-logged-0f1e2d3c"
SECRETS = {"SHOP_SECRET": "shpss_9f8e7d6c5b4a-webhook", "MM_TOKEN": "mm-query-token-55aa"}
SHOPPER = "ada.lovelace@example.com"
MEMBER = "grace.hopper@example.com"
CONFIG = """
sources:
  shop:
    verify: {scheme: shopify, secret: "${SHOP_SECRET}"}
  members:
    verify: {scheme: token, secret: "${MM_TOKEN}", at: query.token}
    methods: [GET, POST]
    event_type: body.event_type
routes:
  - name: paid-order
    source: shop
    event: orders/paid
    contact: {email: body.customer.email, given_name: body.customer.first_name}
    actions:
      - tags: [101]
  - name: mm-member
    source: members
    event: mm_member_add
    contact: {email: body.email}
    actions:
      - action_set: 55
"""


@pytest.fixture
def fake() -> Iterator[FakeKeapServer]:
    with FakeKeapServer(valid_keys={API_KEY}) as server:
        # Keap's fault text echoes the contact's email: the log must still not show it.
        server.state.set_fault(
            "ContactService.runActionSequence", 5, f"[InvalidParameter] {MEMBER} has opted out"
        )
        yield server


def _wait_final(base: str, event_ids: list[str]) -> None:
    deadline = time.monotonic() + 20
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    while time.monotonic() < deadline:
        statuses = [
            httpx.get(f"{base}/admin/events/{eid}", headers=auth).json()["status"]
            for eid in event_ids
        ]
        if "pending" not in statuses:
            return
        time.sleep(0.1)
    raise AssertionError(f"events still pending: {statuses}")


def _use_every_secret(base: str) -> tuple[list[str], list[str]]:
    """Post and administer; the event ids and every header value a secret travelled in."""
    body = json.dumps(
        {"financial_status": "paid", "customer": {"email": SHOPPER, "first_name": "Ada"}}
    ).encode()
    shop = parse_config(CONFIG, SECRETS).sources["shop"]
    signed = {
        **sign_request(shop.verify, body),
        "X-Shopify-Topic": "orders/paid",
        "X-Shopify-Webhook-Id": "wh-1",
        "Content-Type": "application/json",
    }
    order = httpx.post(f"{base}/hooks/shop", content=body, headers=signed)
    assert order.status_code == 202, order.text
    forged = {**signed, "X-Shopify-Hmac-Sha256": "Zm9yZ2VkLXNpZ25hdHVyZS12YWx1ZQ=="}
    assert httpx.post(f"{base}/hooks/shop", content=body, headers=forged).status_code == 401
    query = {"token": SECRETS["MM_TOKEN"], "event_type": "mm_member_add", "email": MEMBER}
    member = httpx.get(f"{base}/hooks/members", params=query)
    assert member.status_code == 202, member.text
    assert httpx.get(f"{base}/admin/events", headers={"Authorization": "Bearer guess-1234567"})
    with httpx.Client(base_url=base) as browser:
        assert browser.post("/admin/login", data={"token": ADMIN_TOKEN}).status_code == 303
        assert browser.get("/admin/").status_code == 200
    ids = [order.json()["event_id"], member.json()["event_id"]]
    _wait_final(base, ids)
    return ids, [v for k, v in signed.items() if k.lower().startswith("x-shopify-hmac")]


def test_a_served_relay_logs_no_secret_and_no_whole_email(
    tmp_path: Path, fake: FakeKeapServer
) -> None:
    port = free_port()
    env = relay_env(
        tmp_path,
        f"sqlite:///{tmp_path / 'relay.db'}",
        CONFIG,
        {
            **SECRETS,
            "RELAY_PORT": str(port),
            "RELAY_HOST": "127.0.0.1",
            **keap_env(fake, API_KEY),
            "RELAY_ADMIN_TOKEN": ADMIN_TOKEN,
            "RELAY_LOG_FORMAT": "json",
        },
    )
    process = start_relay(["serve"], env, tmp_path, port)
    try:
        (order_id, member_id), signatures = _use_every_secret(f"http://127.0.0.1:{port}")
    finally:
        stop(process)
    text = (tmp_path / "relay.log").read_text()
    lines: list[dict[str, Any]] = [json.loads(line) for line in text.splitlines()]

    forbidden = [API_KEY, ADMIN_TOKEN, *SECRETS.values(), *signatures, SHOPPER, MEMBER]
    assert [secret for secret in forbidden if secret in text] == []
    assert "Zm9yZ2Vk" not in text  # not even a forged signature is echoed
    assert "ada.lovelace" not in text
    assert "grace.hopper" not in text

    received = {line["event_id"]: line for line in lines if line["message"] == "webhook received"}
    assert {eid: received[eid]["source"] for eid in (order_id, member_id)} == {
        order_id: "shop",
        member_id: "members",
    }
    refused = [line for line in lines if line["message"] == "webhook refused"]
    assert [(r["source"], r["outcome"]) for r in refused] == [("shop", "unauthorized")]
    calls = [line for line in lines if line["message"] == "keap call"]
    assert {(c["event_id"], c["route"], c["action"], c["outcome"]) for c in calls} == {
        (order_id, "paid-order", "contact.upsert", "ok"),
        (order_id, "paid-order", "tags", "ok"),
        (member_id, "mm-member", "contact.upsert", "ok"),
        (member_id, "mm-member", "action_set", "failed"),
    }
    (delivered,) = [line for line in lines if line["message"] == "event delivered"]
    assert (delivered["event_id"], delivered["contact"]) == (order_id, "a***@example.com")
    (dead,) = [line for line in lines if line["message"] == "event dead"]
    assert dead["event_id"] == member_id
    assert "g***@example.com has opted out" in dead["error"]
