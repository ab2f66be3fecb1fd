"""Credentials as Keap really refuses them, end to end through the fake over HTTP.

Every way the token endpoint refuses the stored refresh token pauses delivery: no event
dies, `/readyz` and the log say what Keap said and how to re-authorise, and delivery
resumes once a re-authorised token arrives — in the environment, or stored by
`relay keap login` while the relay runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest

from app.config.models import RelayConfig
from app.keap.models import StoredToken
from fake_keap.server import FakeKeapServer
from tests.delivery.conftest import Relay, running_relay
from tests.delivery.test_oauth_e2e import CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH, oauth_settings

REFUSALS = {
    # kind: what /readyz must quote of Keap's answer
    "invalid_grant": "Invalid refresh token (invalid_grant)",
    "invalid_request": "Invalid Refresh Token (invalid_request)",
    "invalid_client": "Client authentication failed (invalid_client)",
    "bare_400": "HTTP 400",
    "bare_401": "HTTP 401",
}


async def keap_auth(relay: Relay) -> dict[str, str]:
    check: dict[str, str] = (await relay.client.get("/readyz")).json()["checks"]["keap_auth"]
    return check


async def wait_for_auth(relay: Relay, status: str, within: float = 10.0) -> dict[str, str]:
    for _ in range(int(within / 0.05)):
        check = await keap_auth(relay)
        if check["status"] == status:
            return check
        await asyncio.sleep(0.05)
    raise AssertionError(f"keap_auth stayed {check}")


async def post_events(relay: Relay, prefix: str, count: int = 3) -> list[str]:
    return [
        await relay.post({"event": "tag", "id": f"{prefix}-{i}", "email": f"{prefix}{i}@x.test"})
        for i in range(count)
    ]


async def count_dead(relay: Relay) -> int:
    counts: dict[str, int] = await relay.store.count_by_status()
    return counts.get("dead", 0)


def refuse_the_stored_token(fake: FakeKeapServer, kind: str) -> None:
    """Through the fake's control API, as a separate-process fake would be driven."""
    control = {"refresh_refusal": kind, "revoke_refresh_token": True}
    assert httpx.post(f"{fake.control_url}/config", json=control).status_code == 200


@pytest.mark.parametrize("kind", sorted(REFUSALS))
async def test_a_refused_refresh_pauses_without_a_dead_event_and_a_new_env_token_resumes(
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_keap.state.set_oauth(CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH)
    refuse_the_stored_token(fake_keap, kind)
    caplog.set_level(logging.WARNING, logger="relay.worker")
    async with running_relay(database_url, fake_keap, delivery_config, **oauth_settings()) as relay:
        ids = await post_events(relay, "p")
        check = await wait_for_auth(relay, "failing")
        await asyncio.sleep(1.0)  # several probes, each refused again
        check = await keap_auth(relay)
        assert check["status"] == "failing"
        assert REFUSALS[kind] in check["detail"]
        assert "relay keap login" in check["detail"]
        assert "RELAY_KEAP_REFRESH_TOKEN" in check["detail"]
        assert await count_dead(relay) == 0
        for event_id in ids:
            assert (await relay.event(event_id)).status == "pending"
    paused = [r for r in caplog.records if "delivery paused" in r.getMessage()]
    assert paused
    assert "relay keap login" in paused[0].getMessage()
    assert getattr(paused[0], "remedy", "")
    assert "RELAY_KEAP_REFRESH_TOKEN" in paused[0].remedy

    # The operator re-authorises and restarts with the new token in the environment.
    fake_keap.state.set_oauth(CLIENT_ID, CLIENT_SECRET, "reauthorised")
    async with running_relay(
        database_url, fake_keap, delivery_config, **oauth_settings("reauthorised")
    ) as relay:
        for event_id in ids:
            await relay.wait_for(event_id, "delivered")
        assert (await keap_auth(relay))["status"] == "ok"
        assert await count_dead(relay) == 0


async def test_a_token_stored_by_another_process_is_adopted_without_a_restart(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    """The store is re-read before a refusal is believed, and at every probe: a token that
    `relay keap login` (or another replica) stored un-pauses the running relay."""
    fake_keap.state.set_oauth(CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH)
    refuse_the_stored_token(fake_keap, "invalid_request")
    async with running_relay(database_url, fake_keap, delivery_config, **oauth_settings()) as relay:
        ids = await post_events(relay, "q", count=2)
        await wait_for_auth(relay, "failing")
        stored = await relay.store.load_oauth_token()
        fake_keap.state.set_oauth(CLIENT_ID, CLIENT_SECRET, "logged-in")
        new: Any = StoredToken("logged-in", None, None, stored.seed_hash)
        assert await relay.store.save_oauth_token(new, previous_refresh_token=FIRST_REFRESH)
        for event_id in ids:
            await relay.wait_for(event_id, "delivered")
        assert (await keap_auth(relay))["status"] == "ok"
        assert await count_dead(relay) == 0


async def test_the_crash_window_pauses_with_the_reauthorisation_instruction(
    database_url: str,
    fake_keap: FakeKeapServer,
    delivery_config: RelayConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Keap rotates the token but its answer never reaches us (as when the process dies
    before saving): the new token exists only at Keap and the stored one is dead. That
    cannot be prevented; it must cost no event and say how to recover."""
    fake_keap.state.set_oauth(CLIENT_ID, CLIENT_SECRET, FIRST_REFRESH)
    fake_keap.state.fail_next("drop", operation="oauth.refresh", after_handling=True)
    caplog.set_level(logging.WARNING, logger="relay.worker")
    async with running_relay(database_url, fake_keap, delivery_config, **oauth_settings()) as relay:
        ids = await post_events(relay, "c", count=2)
        check = await wait_for_auth(relay, "failing")
        assert fake_keap.state.refresh_token != FIRST_REFRESH  # Keap did rotate
        stored = await relay.store.load_oauth_token()
        assert stored.refresh_token == FIRST_REFRESH  # but we never learnt the new one
        assert "relay keap login" in check["detail"]
        assert await count_dead(relay) == 0
        for event_id in ids:
            assert (await relay.event(event_id)).status == "pending"
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "delivery paused" in logged
    assert "relay keap login" in logged


async def test_an_oauth_client_without_any_refresh_token_says_to_log_in(
    database_url: str, fake_keap: FakeKeapServer, delivery_config: RelayConfig
) -> None:
    """A fresh install: the app's id and secret are set, no token exists yet."""
    fake_keap.state.set_oauth(CLIENT_ID, CLIENT_SECRET, None)
    settings = {**oauth_settings(), "keap_refresh_token": None}
    async with running_relay(database_url, fake_keap, delivery_config, **settings) as relay:
        check = await wait_for_auth(relay, "failing")  # before any event arrives
        event_id = (await post_events(relay, "n", count=1))[0]
        await asyncio.sleep(0.5)
        assert (await relay.event(event_id)).status == "pending"
    assert "no OAuth refresh token is stored or configured" in check["detail"]
    assert "relay keap login" in check["detail"]
