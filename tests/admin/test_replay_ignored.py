"""Replaying an ignored event: it has no plan to run, so only a replay with replan gives
it one — after the operator adds the route it lacked. One event, many (API and CLI in
tests/cli) and the dashboard's button; on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.admin.conftest import BEARER, HTML, admin_client, csrf_from, login
from tests.admin.test_ignored_reason import post_order
from tests.conftest import CONFIG_YAML, make_config

# CONFIG_YAML and the route an operator adds once orders/create events turn up ignored.
WITH_CREATE_ROUTE = (
    CONFIG_YAML
    + """
  - name: new-order
    source: shop
    event: orders/create
    contact: {email: body.customer.email}
    actions:
      - tags: [901]
"""
)


@pytest.fixture
async def ignored(database_url: str) -> dict[str, str]:
    """Two webhooks stored as ignored: orders/create (the added route takes it) and
    orders/cancelled (no route takes it, even then). Their ids by topic."""
    async with admin_client(database_url) as relay:
        return {kind: await post_order(relay, f"orders/{kind}") for kind in ("create", "cancelled")}


@pytest.fixture
async def relay(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The relay restarted with the orders/create route added to its relay.yaml."""
    async with admin_client(database_url, config=make_config(WITH_CREATE_ROUTE)) as client:
        yield client


async def shown(relay: httpx.AsyncClient, event_id: str) -> dict[str, object]:
    answer: dict[str, object] = (
        await relay.get(f"/admin/events/{event_id}", headers=BEARER)
    ).json()
    return answer


async def test_replan_queues_an_ignored_event_the_added_route_takes(
    relay: httpx.AsyncClient, ignored: dict[str, str]
) -> None:
    event_id = ignored["create"]
    response = await relay.post(f"/admin/events/{event_id}/replay?replan=true", headers=BEARER)
    assert response.status_code == 202, response.text
    event = await shown(relay, event_id)
    assert (event["status"], event["routes"]) == ("pending", ["new-order"])
    assert [s["action"] for s in event["steps"]] == ["contact.upsert", "tags"]  # type: ignore[attr-defined]
    assert event["contact_email"] == "ann@example.com"
    assert (event["reason"], event["last_error"]) == (None, None)  # "no route" no longer holds


async def test_replan_leaves_an_event_no_route_takes_ignored_and_says_why(
    relay: httpx.AsyncClient, ignored: dict[str, str]
) -> None:
    event_id = ignored["cancelled"]
    response = await relay.post(f"/admin/events/{event_id}/replay?replan=true", headers=BEARER)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert "no route for event 'orders/cancelled'" in detail
    assert "stays ignored" in detail
    event = await shown(relay, event_id)
    assert (event["status"], event["reason"]) == (
        "ignored",
        "no route for event 'orders/cancelled'",
    )


async def test_bulk_replay_of_ignored_events_needs_replan_and_queues_what_is_routed(
    relay: httpx.AsyncClient, ignored: dict[str, str]
) -> None:
    refused = await relay.post("/admin/replay", json={"status": "ignored"}, headers=BEARER)
    assert refused.status_code == 400
    assert "replan" in refused.json()["detail"]

    body = {"status": "ignored", "replan": True}
    response = await relay.post("/admin/replay", json=body, headers=BEARER)
    assert (response.status_code, response.json()) == (202, {"requeued": 1})
    statuses = {topic: (await shown(relay, i))["status"] for topic, i in ignored.items()}
    assert statuses == {"create": "pending", "cancelled": "ignored"}


async def test_an_ignored_event_page_offers_the_re_plan_button(
    relay: httpx.AsyncClient, ignored: dict[str, str]
) -> None:
    await login(relay)
    view = f"/admin/events/{ignored['create']}/view"
    page = (await relay.get(view, headers=HTML)).text
    assert 'data-testid="replay-replanned"' in page
    assert 'data-testid="replay-unfinished"' not in page  # it has no steps to finish
    assert 'data-testid="replay-from-start"' not in page
    pressed = await relay.post(
        f"{view}/replay", data={"csrf": csrf_from(page), "replan": "true"}, headers=HTML
    )
    assert pressed.status_code == 303
    assert pressed.headers["location"].endswith("?flash=requeued-replanned")
    assert (await shown(relay, ignored["create"]))["status"] == "pending"


async def test_the_ignored_list_offers_a_bulk_re_plan_that_queues_what_is_routed(
    relay: httpx.AsyncClient, ignored: dict[str, str]
) -> None:
    await login(relay)
    assert (
        'data-testid="replan-all-ignored"'
        not in (await relay.get("/admin/?status=dead", headers=HTML)).text
    )
    page = (await relay.get("/admin/?status=ignored", headers=HTML)).text
    assert 'data-testid="replan-all-ignored"' in page
    form = {"csrf": csrf_from(page), "status": "ignored", "source": "", "replan": "true"}
    pressed = await relay.post("/admin/view/replay", data=form, headers=HTML)
    assert pressed.status_code == 303
    assert pressed.headers["location"].endswith("?status=ignored&flash=bulk-replanned&n=1")
    statuses = {topic: (await shown(relay, i))["status"] for topic, i in ignored.items()}
    assert statuses == {"create": "pending", "cancelled": "ignored"}
    shown_page = (await relay.get(pressed.headers["location"], headers=HTML)).text
    assert "Re-planned the ignored events: 1 queued" in shown_page
