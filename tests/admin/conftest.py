"""An app with the admin router on a real database, and ways to put events in it in
the states an operator meets: pending, ignored, and dead after some steps succeeded."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config.models import RelayConfig
from app.domain.events import AttemptRecord, NewEvent, PlannedStep
from app.main import create_app
from app.store.base import Store
from app.store.ids import new_event_id
from tests.conftest import make_config, make_settings

ADMIN_TOKEN = "adm-Zq8rT3vK9wLm2Xp7-never-shown-42"
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
HTML = {"Accept": "text/html,application/xhtml+xml"}
WORKER = "test-worker"


@asynccontextmanager
async def admin_client(
    database_url: str,
    *,
    token: str | None = ADMIN_TOKEN,
    base_url: str = "http://relay",
    config: RelayConfig | None = None,
    **overrides: Any,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(database_url, admin_token=token, **overrides)
    app = create_app(settings, config=config or make_config(), run_worker=False)
    async with app.fastapi.router.lifespan_context(app.fastapi):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def admin(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client (no credentials yet) of a relay whose admin token is ADMIN_TOKEN, on each
    database in turn."""
    async with admin_client(database_url) as client:
        yield client


@pytest.fixture
def store(admin: httpx.AsyncClient) -> Store:
    result: Store = admin.app.state.store  # type: ignore[attr-defined]
    return result


def planned(route: str = "paid-order", actions: int = 3) -> list[PlannedStep]:
    steps = [PlannedStep(route, "contact.upsert", {"email": "x@example.com"})]
    steps += [
        PlannedStep(route, "tags", {"contact_step": 0, "ids": [100 + n]}) for n in range(actions)
    ]
    return steps


def new_event(
    *,
    received_at: float,
    source: str = "shop",
    email: str | None = None,
    status: str = "pending",
    event_type: str = "orders/paid",
    payload: Any = None,
    steps: list[PlannedStep] | None = None,
) -> NewEvent:
    event_id = new_event_id(received_at)
    ignored = status == "ignored"
    return NewEvent(
        id=event_id,
        source=source,
        event_type=event_type,
        external_id=f"ext-{event_id}",
        dedupe_key=event_id,
        status="ignored" if ignored else "pending",
        received_at=received_at,
        payload=payload if payload is not None else {"n": event_id},
        headers={"content-type": "application/json"},
        routes=[] if ignored else ["paid-order"],
        contact_email=email,
        last_error=None,
        steps=[] if ignored else (steps if steps is not None else planned()),
    )


async def insert(store: Store, *events: NewEvent) -> list[str]:
    inserted = await store.insert_events(list(events))
    assert all(result.created for result in inserted)
    return [result.id for result in inserted]


async def kill(
    store: Store,
    event_id: str,
    *,
    done_steps: int,
    error: str = "[InvalidParameter] tag 102 does not exist",
) -> None:
    """Deliver the first ``done_steps`` steps of a pending event, then fail it for good."""
    now = time.time()
    claimed = await store.claim_due_events(WORKER, now, 30, 1000)
    for record in claimed:
        if record.id != event_id:
            await store.release_claim(record.id, WORKER, record.next_attempt_at or now)
    assert event_id in {record.id for record in claimed}, "the event was not due"
    for idx in range(done_steps):
        assert await store.complete_step(event_id, idx, WORKER, {"ok": True}, 4242)
    await store.record_attempts(
        [
            AttemptRecord(
                event_id,
                done_steps,
                now,
                0.1234,
                "contact.tags.add",
                "POST /v1/contacts/4242/tags",
                400,
                "permanent",
                error,
            ),
        ]
    )
    assert await store.fail_step(
        event_id, done_steps, WORKER, error, dead=True, next_attempt_at=None, now=now
    )


async def login(client: httpx.AsyncClient, next_path: str = "/admin/") -> httpx.Response:
    return await client.post("/admin/login", data={"token": ADMIN_TOKEN, "next": next_path})


def csrf_from(page: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def database_url(tmp_path: Path, name: str = "relay.db") -> str:
    return f"sqlite:///{tmp_path / name}"
