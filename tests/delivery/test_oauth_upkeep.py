"""An idle relay keeps its OAuth refresh token alive (Keap kills one unused for 45 days),
once per period across replicas, and shows the token's age."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import httpx
import pytest

from app.config.models import RelayConfig
from app.keap.auth import OAuthSession
from app.store.factory import open_store
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import running_relay
from tests.delivery.test_oauth_e2e import CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH, oauth_settings

DAY = 86400.0
WEEK = 7 * DAY


class Clock:
    """Injected time: the sessions and the rows they store read it, nothing sleeps."""

    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[object]:
    opened = open_store(database_url, pool_size=2)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def session(
    http: httpx.AsyncClient, fake: FakeKeapServer, store: object, clock: Clock
) -> OAuthSession:
    return OAuthSession(
        http,
        token_url=fake.token_url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        env_refresh_token=FIRST_REFRESH,
        store=store,  # type: ignore[arg-type]
        report=lambda call: None,
        clock=clock,
    )


async def test_the_refresh_token_is_rotated_once_a_week_across_two_replicas(
    store: object, fake_keap: FakeKeapServer
) -> None:
    fake_keap.state.set_oauth(CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH)
    clock = Clock()
    async with httpx.AsyncClient() as http:
        first, second = (
            session(http, fake_keap, store, clock),
            session(http, fake_keap, store, clock),
        )
        assert not await first.refresh_if_older_than(WEEK)  # seeds the store; nothing to do
        assert not await second.refresh_if_older_than(WEEK)

        clock.now += 6 * DAY
        assert not await first.refresh_if_older_than(WEEK)
        assert first.token_age() == 6 * DAY
        assert fake_keap.state.refresh_count == 0

        clock.now += 1.1 * DAY
        assert await first.refresh_if_older_than(WEEK)
        assert await second.refresh_if_older_than(WEEK)  # adopts the first's rotation
        assert fake_keap.state.refresh_count == 1
        assert first.token_age() == second.token_age() == 0

        clock.now += 0.5 * DAY
        assert not await second.refresh_if_older_than(WEEK)
        clock.now += 7 * DAY
        assert await second.refresh_if_older_than(WEEK)
        assert await first.refresh_if_older_than(WEEK)
        assert fake_keap.state.refresh_count == 2

    stored = await store.load_oauth_token()  # type: ignore[attr-defined]
    assert stored.refresh_token == fake_keap.state.refresh_token  # the live one is saved
    # Both can still call Keap with what they hold.
    assert await first.access_token()
    assert await second.access_token()
    assert fake_keap.state.refresh_count == 2


async def test_an_idle_relay_refreshes_on_schedule_and_shows_the_tokens_age(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    fake_keap.state.set_oauth(CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH)
    every_seconds = 1.0
    async with running_relay(
        database_url,
        fake_keap,
        delivery_config,
        keap_refresh_every_days=every_seconds / DAY,
        **oauth_settings(),
    ) as relay:
        for _ in range(200):  # no event is posted: only the schedule calls Keap
            if fake_keap.state.refresh_count >= 2:
                break
            await asyncio.sleep(0.05)
        assert fake_keap.state.refresh_count >= 2
        ready = (await relay.client.get("/readyz")).json()["checks"]["keap_auth"]
        metrics = (await relay.client.get("/metrics")).text
        # The schedule keeps rotating every second: compare the stored token with the
        # fake's live one at a moment when no rotation is between the fake and the store.
        for _ in range(100):
            stored = await relay.store.load_oauth_token()
            live = fake_keap.state.refresh_token
            if stored.refresh_token == live:
                break
            await asyncio.sleep(0.02)

    assert fake_keap.state.request_count() == fake_keap.state.request_count("oauth.refresh")
    assert stored.refresh_token == live
    assert ready["status"] == "ok"
    assert "OAuth refresh token age" in ready["detail"]
    age = re.search(r"^relay_keap_oauth_refresh_token_age_seconds (\S+)$", metrics, re.M)
    assert age is not None
    assert 0 <= float(age.group(1)) < 3 * every_seconds
