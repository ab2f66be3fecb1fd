"""An event no route takes says why: in the webhook's log line, in its JSON and on the
dashboard — received over HTTP and stored, on both databases."""

from __future__ import annotations

import html
import json
import logging

import httpx
import pytest

from tests.admin.conftest import BEARER, HTML, login
from tests.test_ingest_http import shopify_headers

pytestmark = pytest.mark.usefixtures("database_url")


async def post_order(admin: httpx.AsyncClient, topic: str, **fields: object) -> str:
    body = json.dumps({"id": 7, "customer": {"email": "ann@example.com"}, **fields}).encode()
    headers = shopify_headers(body, topic=topic, webhook_id=f"wh-{topic}-{len(fields)}")
    response = await admin.post("/hooks/shop", content=body, headers=headers)
    assert response.status_code == 202, response.text
    event_id: str = response.json()["event_id"]
    return event_id


@pytest.mark.parametrize(
    ("topic", "fields", "reason"),
    [
        ("orders/create", {}, "no route for event 'orders/create'"),
        (
            "orders/paid",
            {"financial_status": "pending"},
            "no route's condition matched event 'orders/paid' "
            "(paid-order: when body.financial_status == 'paid')",
        ),
    ],
)
async def test_an_ignored_event_says_why_everywhere(
    admin: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    topic: str,
    fields: dict[str, object],
    reason: str,
) -> None:
    with caplog.at_level(logging.INFO, logger="relay"):
        event_id = await post_order(admin, topic, **fields)
    line = next(r for r in caplog.records if getattr(r, "event_id", None) == event_id)
    assert line.getMessage() == "webhook received"
    assert (line.status, line.reason) == ("ignored", reason)  # type: ignore[attr-defined]

    event = (await admin.get(f"/admin/events/{event_id}", headers=BEARER)).json()
    assert (event["status"], event["reason"]) == ("ignored", reason)
    listed = (await admin.get("/admin/events?status=ignored", headers=BEARER)).json()
    assert [(e["id"], e["reason"]) for e in listed["items"]] == [(event_id, reason)]

    await login(admin)
    page = (await admin.get(f"/admin/events/{event_id}/view", headers=HTML)).text
    assert f"Ignored: {reason}" in html.unescape(page)


async def test_a_routed_event_has_no_reason_and_logs_none(
    admin: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="relay"):
        event_id = await post_order(admin, "orders/paid", financial_status="paid")
    line = next(r for r in caplog.records if getattr(r, "event_id", None) == event_id)
    assert line.status == "pending"
    assert not hasattr(line, "reason")
    event = (await admin.get(f"/admin/events/{event_id}", headers=BEARER)).json()
    assert event["reason"] is None
