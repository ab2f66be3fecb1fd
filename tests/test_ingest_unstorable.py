"""One webhook cannot stop ingest: input the database cannot hold is refused with a 400
naming it, a failure while storing one request fails that request only — the rest of its
group commit is stored — on SQLite and on PostgreSQL alike (issue 13, point 1)."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest

from app.ingest.bodies import MAX_NESTING
from app.store.queries import events as event_sql
from tests.test_ingest_http import ORDER, shopify_headers

_ids = itertools.count(1)


def order_body(**customer: Any) -> bytes:
    return json.dumps({**ORDER, "customer": {**ORDER["customer"], **customer}}).encode()


async def post_order(relay: httpx.AsyncClient, body: bytes) -> httpx.Response:
    headers = shopify_headers(body, webhook_id=f"wh-unstorable-{next(_ids)}")
    return await relay.post("/hooks/shop", content=body, headers=headers)


async def stored(relay: httpx.AsyncClient, response: httpx.Response) -> bool:
    store = relay.app.state.store  # type: ignore[attr-defined]
    return await store.get_event(response.json()["event_id"]) is not None


@pytest.mark.parametrize(
    ("body", "named"),
    [
        # A sender cut the name mid-emoji: the first half of a surrogate pair, escaped.
        (b'"Ada \\ud83d"', "body.customer.first_name holds a lone UTF-16 surrogate (\\ud83d"),
        (b'"\\ude00 Ada"', "body.customer.first_name holds a lone UTF-16 surrogate (\\ude00"),
        (b"1e400", "the number 1e400 is beyond the range of a double"),
    ],
)
async def test_unstorable_json_is_refused_and_the_next_webhook_is_stored(
    relay: httpx.AsyncClient, body: bytes, named: str
) -> None:
    raw = order_body(first_name="PLACEHOLDER").replace(b'"PLACEHOLDER"', body)
    refused = await post_order(relay, raw)
    assert refused.status_code == 400
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert named in refused.json()["detail"]
    after = await post_order(relay, order_body(first_name="Grace"))
    assert after.status_code == 202
    assert await stored(relay, after)
    ready = await relay.get("/readyz")
    assert ready.json()["checks"]["database"]["status"] == "ok"


async def test_a_whole_emoji_escaped_as_a_pair_is_stored_as_sent(
    relay: httpx.AsyncClient,
) -> None:
    raw = order_body(first_name="PLACEHOLDER").replace(b'"PLACEHOLDER"', b'"Ada \\ud83d\\ude00"')
    response = await post_order(relay, raw)
    assert response.status_code == 202
    store = relay.app.state.store  # type: ignore[attr-defined]
    event = await store.get_event(response.json()["event_id"])
    assert event.payload["customer"]["first_name"] == "Ada \U0001f600"


@asynccontextmanager
async def writes_held(relay: httpx.AsyncClient, database_url: str) -> AsyncIterator[None]:
    """Hold the database's write lock from another connection while the block runs, so
    requests posted meanwhile queue up and are committed together when it ends."""
    if database_url.startswith("sqlite"):
        blocker = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=5)
        blocker.isolation_level = None
        blocker.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        return
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await conn.execute("LOCK TABLE events IN EXCLUSIVE MODE")  # INSERT waits for it
        try:
            yield
        finally:
            await conn.rollback()


def queued_requests(relay: httpx.AsyncClient) -> int:
    """Requests waiting for the next group commit (the writer's queue on SQLite, the
    flushers' pending list on PostgreSQL)."""
    store = relay.app.state.store  # type: ignore[attr-defined]
    if store.dialect == "sqlite":  # (and those the ingest writer process holds)
        held = len(store.db.ingest._waiting) if store.db.ingest is not None else 0
        return int(store.db._jobs.qsize()) + held
    return len(store.db._ingest._pending)


async def post_batch_with_one_poisoned(
    relay: httpx.AsyncClient, database_url: str
) -> tuple[httpx.Response, list[httpx.Response]]:
    """Eight good orders and one poisoned, the poisoned one in the middle of a batch the
    database commits together."""
    async with writes_held(relay, database_url):
        # The first requests take the writer (or each of the flushers) and wait on the
        # lock...
        ahead = []
        for _ in range(2):
            ahead.append(asyncio.create_task(post_order(relay, order_body())))
            await asyncio.sleep(0.2)
        # ...these queue up behind them and become one group commit.
        good = [order_body(first_name=f"Good {i}") for i in range(6)]
        bodies = [*good[:3], order_body(first_name="Poisoned", poison=True), *good[3:]]
        batch = [asyncio.create_task(post_order(relay, body)) for body in bodies]
        # (On SQLite a payload the encoder fails on fails in the request, before it
        # queues: its neighbours still must.)
        for _ in range(100):
            if queued_requests(relay) >= len(good):
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        assert queued_requests(relay) >= len(good), "the batch did not queue up"
    responses = await asyncio.gather(*ahead, *batch)
    poisoned = responses[2 + 3]
    return poisoned, [r for r in responses if r is not poisoned]


def poison_encoder(monkeypatch: pytest.MonkeyPatch, fault: Callable[[], str]) -> None:
    """The JSON encoder the store serialises payloads with, failing for the poisoned
    order's customer only (the way its fallback once produced a lone surrogate)."""
    original = event_sql.dumps

    def dumps(value: Any) -> str:
        if isinstance(value, dict) and value.get("customer", {}).get("poison"):
            return fault()
        return original(value)

    monkeypatch.setattr(event_sql, "dumps", dumps)


def lone_surrogate() -> str:
    return '{"customer":{"first_name":"Ada \ud83d"}}'


def broken_encoder() -> str:
    raise RuntimeError("the encoder broke")


@pytest.mark.parametrize(
    ("fault", "status", "detail"),
    [
        (lone_surrogate, 400, "a value cannot be stored as it is (UnicodeEncodeError"),
        (broken_encoder, 503, "RuntimeError: the encoder broke"),
    ],
    ids=["unencodable-value", "encoder-failure"],
)
async def test_a_failure_inside_one_batch_member_fails_that_request_only(
    relay: httpx.AsyncClient,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
    fault: Callable[[], str],
    status: int,
    detail: str,
) -> None:
    poison_encoder(monkeypatch, fault)
    poisoned, others = await post_batch_with_one_poisoned(relay, database_url)
    assert poisoned.status_code == status
    assert detail in poisoned.json()["detail"]
    assert [r.status_code for r in others] == [202] * len(others)
    for response in others:
        assert await stored(relay, response)
    # The writer lives on: the next webhook is stored, and the relay is ready.
    after = await post_order(relay, order_body(first_name="After"))
    assert after.status_code == 202
    assert await stored(relay, after)
    ready = await relay.get("/readyz")
    assert ready.status_code == 200, ready.text


async def test_everything_else_json_allows_is_stored_as_sent(relay: httpx.AsyncClient) -> None:
    """The other half of the rule: NUL and control characters, line separators, an
    escaped emoji, an empty key, integers past 64 bits and nesting as deep as ingest takes
    (MAX_NESTING levels; deeper payloads stored before that limit, past what orjson
    writes, are covered in tests/admin/test_sessions_facing_the_internet.py) are stored
    and read back exactly, on either database."""
    nested: Any = "bottom"
    for _ in range(MAX_NESTING - 1):  # the order object is the first level
        nested = [nested]
    extras = {
        "note": "nul\u0000 tab\t bell\u0007 del\u007f sep\u2028 emoji\U0001f600",
        "": "empty key",
        "big": 2**70,
        "negative_zero": -0.0,
        "tiny": 5e-324,
        "nested": nested,
    }
    body = json.dumps({**ORDER, **extras}, ensure_ascii=True).encode()
    response = await post_order(relay, body)
    assert response.status_code == 202, response.text
    store = relay.app.state.store  # type: ignore[attr-defined]
    event = await store.get_event(response.json()["event_id"])
    assert event.payload == json.loads(body)
    assert event.payload["big"] == 2**70
    assert event.payload["nested"] == nested
