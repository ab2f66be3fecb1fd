"""GET /admin/events and /admin/events/{id}: filters, cursor paging, the event's JSON."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import httpx
import pytest

from app.main import create_app
from app.store.base import Store
from tests.admin.conftest import BEARER, insert, kill, new_event
from tests.conftest import make_config, make_settings

SOURCES = ("shop", "woo", "members")
EMAILS = ("Ann@Example.com", "bo@example.com", "cy@example.com", "di@example.com")


def nth_event_fields(n: int) -> dict[str, Any]:
    return {
        "source": SOURCES[n % 3],
        "email": EMAILS[n % 4],
        "status": "ignored" if n % 5 == 0 else "pending",
    }


@pytest.fixture
async def many(store: Store) -> list[dict[str, Any]]:
    """250 events received one second apart, oldest first, with what each should show."""
    start = time.time() - 10_000
    events = [new_event(received_at=start + n, **nth_event_fields(n)) for n in range(250)]
    ids = await insert(store, *events)
    return [{"id": event_id, **nth_event_fields(n)} for n, event_id in enumerate(ids)]


async def all_pages(client: httpx.AsyncClient, query: str) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        response = await client.get(f"/admin/events?{query}{suffix}", headers=BEARER)
        assert response.status_code == 200, response.text
        pages.append(response.json()["items"])
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return pages


async def test_pages_of_100_cover_all_250_once_newest_first(
    admin: httpx.AsyncClient, many: list[dict[str, Any]]
) -> None:
    pages = await all_pages(admin, "limit=100")
    assert [len(page) for page in pages] == [100, 100, 50]
    seen = [item["id"] for page in pages for item in page]
    assert seen == [event["id"] for event in reversed(many)]


async def test_cursor_is_stable_while_new_events_arrive(
    admin: httpx.AsyncClient, store: Store, many: list[dict[str, Any]]
) -> None:
    first = (await admin.get("/admin/events?limit=100", headers=BEARER)).json()
    await insert(store, *(new_event(received_at=time.time(), email=f"n{n}@x.io") for n in range(5)))
    second = await admin.get(
        f"/admin/events?limit=100&cursor={first['next_cursor']}", headers=BEARER
    )
    expected = [event["id"] for event in reversed(many)][100:200]
    assert [item["id"] for item in second.json()["items"]] == expected


async def test_default_page_is_50(admin: httpx.AsyncClient, many: list[dict[str, Any]]) -> None:
    body = (await admin.get("/admin/events", headers=BEARER)).json()
    assert len(body["items"]) == 50
    assert body["next_cursor"]


async def test_filters_combine(admin: httpx.AsyncClient, many: list[dict[str, Any]]) -> None:
    def expected(**want: str) -> list[str]:
        return [
            e["id"]
            for e in reversed(many)
            if all(e[key].lower() == value.lower() for key, value in want.items())
        ]

    cases = [
        ("status=ignored", {"status": "ignored"}),
        ("source=woo", {"source": "woo"}),
        ("email=ann@EXAMPLE.com", {"email": "Ann@Example.com"}),
        (
            "status=pending&source=members&email=bo@example.com",
            {"status": "pending", "source": "members", "email": "bo@example.com"},
        ),
    ]
    for query, want in cases:
        pages = await all_pages(admin, f"{query}&limit=7")
        ids = [item["id"] for page in pages for item in page]
        assert ids == expected(**want), query
        assert ids, query


async def test_nothing_matches_an_unknown_source(
    admin: httpx.AsyncClient, many: list[dict[str, Any]]
) -> None:
    body = (await admin.get("/admin/events?source=nope", headers=BEARER)).json()
    assert body == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "query",
    [
        "status=lost",
        "limit=0",
        "limit=501",
        "limit=ten",
        "limit=-1",
        "cursor=garbage!",
        "cursor=c2VxOmFiYw",  # "seq:abc"
    ],
)
async def test_bad_query_values_answer_400(admin: httpx.AsyncClient, query: str) -> None:
    response = await admin.get(f"/admin/events?{query}", headers=BEARER)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"]


async def test_event_json_in_the_list(admin: httpx.AsyncClient, store: Store) -> None:
    received = time.time() - 30
    [event_id] = await insert(store, new_event(received_at=received, email="Jo@Example.com"))
    [item] = (await admin.get("/admin/events", headers=BEARER)).json()["items"]
    assert set(item) == {
        "id",
        "source",
        "event_type",
        "external_id",
        "status",
        "received_at",
        "contact_email",
        "contact_id",
        "attempts",
        "next_attempt_at",
        "last_error",
        "reason",
        "routes",
        "steps",
    }
    assert item["id"] == event_id
    assert item["status"] == "pending"
    assert item["attempts"] == 0
    assert abs(datetime.fromisoformat(item["received_at"]).timestamp() - received) < 0.001
    assert item["received_at"].endswith("Z")
    assert item["steps"][1] == {
        "index": 1,
        "route": "paid-order",
        "action": "tags",
        "status": "pending",
        "attempts": 0,
        "last_error": None,
        "outcome_unknown": None,
        "params": {"contact_step": 0, "ids": [100]},
        "records": {},
        "dry_run": False,
    }


async def test_event_detail_has_payload_steps_and_history(
    admin: httpx.AsyncClient, store: Store
) -> None:
    payload = {"order": {"id": 7, "email": "Kim@Example.com"}, "note": "<b>hi</b>"}
    [event_id] = await insert(
        store, new_event(received_at=time.time() - 60, email="Kim@Example.com", payload=payload)
    )
    await kill(store, event_id, done_steps=2)

    response = await admin.get(f"/admin/events/{event_id}", headers=BEARER)
    assert response.status_code == 200
    event = response.json()
    assert event["payload"] == payload
    assert event["status"] == "dead"
    assert event["contact_id"] == 4242
    assert event["last_error"] == "[InvalidParameter] tag 102 does not exist"
    assert event["attempts"] == 1
    assert event["next_attempt_at"] is None
    assert [s["status"] for s in event["steps"]] == ["done", "done", "failed", "pending"]
    [attempt] = event["history"]
    assert attempt == {
        "step_index": 2,
        "operation": "contact.tags.add",
        "request": "POST /v1/contacts/4242/tags",
        "status_code": 400,
        "outcome": "permanent",
        "error": "[InvalidParameter] tag 102 does not exist",
        "started_at": attempt["started_at"],
        "duration_ms": 123.4,
    }
    datetime.fromisoformat(attempt["started_at"])


async def test_unknown_event_is_404(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/admin/events/evt_NOPE", headers=BEARER)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "evt_NOPE" in response.json()["detail"]


def test_openapi_documents_the_json_api_but_not_the_pages() -> None:
    schema = create_app(
        make_settings("sqlite:///unused.db"), config=make_config(), run_worker=False
    ).fastapi.openapi()
    paths = schema["paths"]
    assert set(paths["/hooks/{source}"]) == {"post", "get"}
    listing = paths["/admin/events"]["get"]["responses"]
    assert listing["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/EventPage")
    assert "401" in listing
    assert "400" in listing
    detail = paths["/admin/events/{event_id}"]["get"]["responses"]["200"]
    assert detail["content"]["application/json"]["schema"]["$ref"].endswith("/EventDetail")
    assert "202" in paths["/admin/events/{event_id}/replay"]["post"]["responses"]
    assert "requestBody" in paths["/admin/replay"]["post"]
    assert {"EventOut", "StepOut", "AttemptOut", "Problem"} <= set(schema["components"]["schemas"])
    assert not any(
        path.endswith(("/view", "/login", "/logout")) or path == "/admin/" for path in paths
    )
