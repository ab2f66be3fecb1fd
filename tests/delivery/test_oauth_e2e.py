"""OAuth2 end to end: one refresh for many events, and rotated tokens survive restarts."""

from __future__ import annotations

import asyncio

from app.config.models import RelayConfig
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import running_relay

CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH = "relay-app", "app-secret", "refresh-0"


def oauth_settings(refresh_token: str = FIRST_REFRESH) -> dict[str, object]:
    return {
        "keap_api_key": None,
        "keap_client_id": CLIENT_ID,
        "keap_client_secret": CLIENT_SECRET,
        "keap_refresh_token": refresh_token,
    }


async def test_ten_concurrent_events_cause_one_refresh_and_restart_uses_the_rotated_token(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    fake_keap.state.set_oauth(CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH)
    async with running_relay(database_url, fake_keap, delivery_config, **oauth_settings()) as relay:
        ids = await asyncio.gather(
            *(
                relay.post({"event": "tag", "id": f"t-{i}", "email": f"t{i}@example.com"})
                for i in range(10)
            )
        )
        for event_id in ids:
            await relay.wait_for(event_id, "delivered")
        stored = await relay.store.load_oauth_token()
    assert fake_keap.state.refresh_count == 1
    assert stored.refresh_token == fake_keap.state.refresh_token != FIRST_REFRESH

    # Restart with the same environment: refresh-0 is dead at Keap; the stored one wins.
    fake_keap.state.expire_access_tokens()
    async with running_relay(database_url, fake_keap, delivery_config, **oauth_settings()) as relay:
        event_id = await relay.post({"event": "tag", "id": "after", "email": "z@example.com"})
        event = await relay.wait_for(event_id, "delivered")
    assert fake_keap.state.refresh_count == 2
    # The expired access token was refused once, refreshed with the stored token, retried.
    calls = [(a.operation, a.status_code) for a in event.history]
    assert calls[:3] == [("contact.upsert", 401), ("oauth.refresh", 200), ("contact.upsert", 201)]


async def test_a_new_refresh_token_in_the_environment_is_adopted(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    fake_keap.state.set_oauth(CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH)
    async with running_relay(database_url, fake_keap, delivery_config, **oauth_settings()) as relay:
        await relay.wait_for(
            await relay.post({"event": "tag", "id": "a", "email": "a@example.com"}), "delivered"
        )
    # The operator re-authorises: Keap issues a new token, set in the environment.
    fake_keap.state.set_oauth(CLIENT_ID, CLIENT_SECRET, "reauthorised")
    fake_keap.state.expire_access_tokens()
    async with running_relay(
        database_url, fake_keap, delivery_config, **oauth_settings("reauthorised")
    ) as relay:
        await relay.wait_for(
            await relay.post({"event": "tag", "id": "b", "email": "b@example.com"}), "delivered"
        )
        stored = await relay.store.load_oauth_token()
    assert stored.refresh_token == fake_keap.state.refresh_token
