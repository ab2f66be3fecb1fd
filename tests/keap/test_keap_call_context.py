"""A step's CallContext: every call the client makes for it lands in its history (lookups
and token refreshes included), and its before_send hook runs once, through the gate,
before the step's first call goes out."""

from __future__ import annotations

import httpx
import respx

from app.keap.client import CallContext, ContactFields, StoredToken

from .keap_fakes import (
    BASE_URL,
    OAUTH_CREDENTIALS,
    TOKEN_URL,
    Harness,
    MemoryTokenStore,
    token_answer,
)

NOTES = f"{BASE_URL}/rest/v2/contacts/7/notes"
USERINFO = f"{BASE_URL}/rest/v2/oauth/connect/userinfo"


async def test_a_steps_calls_land_in_its_context_and_the_observer_sees_them_too(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.get(USERINFO).respond(200, json={"sub": "12"})
    keap.post(NOTES).respond(201, json={"id": 5})
    ctx = CallContext()
    assert await harness.client().add_note(7, "Order", "paid", ctx=ctx) == 5
    assert [c.operation for c in ctx.calls] == ["user.discover", "note.create"]
    assert harness.calls == ctx.calls


async def test_before_send_runs_once_through_the_gate_before_the_first_call(
    harness: Harness, keap: respx.MockRouter
) -> None:
    sent_before_mark: list[int] = []
    route = keap.get(USERINFO).respond(200, json={"sub": "12"})
    keap.post(NOTES).respond(201, json={"id": 5})

    async def mark_sending() -> None:
        sent_before_mark.append(route.call_count)

    ctx = CallContext(before_send=mark_sending)
    await harness.client().add_note(7, "Order", "paid", ctx=ctx)
    assert sent_before_mark == [0]  # once, before the step's first call (the lookup)
    assert harness.gate.acquired == 2
    assert ctx.before_send is None


async def test_calls_of_no_step_are_observed_but_recorded_nowhere(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.put(f"{BASE_URL}/rest/v1/contacts").respond(201, json={"id": 7})
    step = CallContext()
    client = harness.client()
    await client.upsert_contact(ContactFields(email="a@example.com"))
    await client.upsert_contact(ContactFields(email="b@example.com"), ctx=step)
    assert len(harness.calls) == 2
    assert len(step.calls) == 1


async def test_a_token_refresh_made_for_a_step_is_in_its_history(
    http: httpx.AsyncClient, keap: respx.MockRouter
) -> None:
    keap.post(TOKEN_URL).mock(return_value=token_answer("access-2", "refresh-2"))
    keap.post(f"{BASE_URL}/rest/v1/contacts/7/tags").respond(200, json={})
    store = MemoryTokenStore(StoredToken("refresh-1", None, None, None))
    ctx = CallContext()
    await Harness(http).client(OAUTH_CREDENTIALS, store).add_tags(7, [3], ctx=ctx)
    assert [c.operation for c in ctx.calls] == ["oauth.refresh", "tags.add"]
