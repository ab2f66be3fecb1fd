"""OAuth2: the environment only seeds the store, refreshes are single-flight, a rotated token
is saved before use, and replicas that lose a race adopt the winner's token."""

from __future__ import annotations

import asyncio
import base64
import time
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from app.keap.client import KeapCredentials, StoredToken
from app.keap.errors import KeapAuthError, KeapTransientError

from .keap_fakes import (
    BASE_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    ENV_REFRESH_TOKEN,
    OAUTH_CREDENTIALS,
    TOKEN_URL,
    XMLRPC_URL,
    Harness,
    MemoryTokenStore,
    sha256_hex,
    token_answer,
    xmlrpc_answer,
    xmlrpc_fault,
)

TAGS_URL = f"{BASE_URL}/rest/v1/contacts/1/tags"
ENV_HASH = sha256_hex(ENV_REFRESH_TOKEN)


def in_hours(hours: float) -> float:
    return time.time() + hours * 3600


def refresh_form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


def bearer_of(request: httpx.Request) -> str:
    return request.headers["Authorization"].removeprefix("Bearer ")


async def test_first_start_seeds_from_the_environment(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore()
    refresh = keap.post(TOKEN_URL).mock(return_value=token_answer("access-1", "refresh-1"))
    tags = keap.post(TAGS_URL).respond(200)
    await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])

    request = refresh.calls.last.request
    assert refresh_form(request) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [ENV_REFRESH_TOKEN],
    }
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {basic}"
    assert bearer_of(tags.calls.last.request) == "access-1"
    assert store.token is not None
    assert store.token.refresh_token == "refresh-1"
    assert store.token.seed_hash == ENV_HASH
    assert store.token.access_expires_at is not None
    assert store.token.access_expires_at == pytest.approx(time.time() + 86400, abs=5)
    assert [call.operation for call in harness.calls] == ["oauth.refresh", "tags.add"]
    assert harness.calls[0].path == "/token"
    assert harness.calls[0].status_code == 200
    assert harness.gate.acquired == 1  # the token refresh does not pass the gate


async def test_the_stored_token_wins_on_restart(harness: Harness, keap: respx.MockRouter) -> None:
    store = MemoryTokenStore(StoredToken("refresh-7", "access-7", in_hours(20), ENV_HASH))
    refresh = keap.post(TOKEN_URL).mock(return_value=token_answer("never", "never"))
    tags = keap.post(TAGS_URL).respond(200)
    await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])
    assert refresh.call_count == 0
    assert bearer_of(tags.calls.last.request) == "access-7"


async def test_a_restart_refreshes_with_the_stored_not_the_env_token(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore(StoredToken("refresh-7", "access-7", in_hours(-1), ENV_HASH))
    refresh = keap.post(TOKEN_URL).mock(return_value=token_answer("access-8", "refresh-8"))
    keap.post(TAGS_URL).respond(200)
    await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])
    assert refresh_form(refresh.calls.last.request)["refresh_token"] == ["refresh-7"]
    assert store.token is not None
    assert store.token.refresh_token == "refresh-8"
    assert store.token.seed_hash == ENV_HASH


async def test_a_new_env_token_is_adopted(harness: Harness, keap: respx.MockRouter) -> None:
    stale = StoredToken("refresh-7", "access-7", in_hours(20), sha256_hex("old-env-token"))
    store = MemoryTokenStore(stale)
    refresh = keap.post(TOKEN_URL).mock(return_value=token_answer("access-n", "refresh-n"))
    tags = keap.post(TAGS_URL).respond(200)
    await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])
    assert refresh_form(refresh.calls.last.request)["refresh_token"] == [ENV_REFRESH_TOKEN]
    assert bearer_of(tags.calls.last.request) == "access-n"
    seeded, previous = store.saves[0]
    assert (seeded.refresh_token, seeded.seed_hash, previous) == (
        ENV_REFRESH_TOKEN,
        ENV_HASH,
        "refresh-7",
    )
    assert store.token is not None
    assert store.token.refresh_token == "refresh-n"


async def test_an_access_token_expiring_within_five_minutes_is_refreshed(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore(StoredToken("refresh-7", "access-7", time.time() + 240, ENV_HASH))
    refresh = keap.post(TOKEN_URL).mock(return_value=token_answer("access-8", "refresh-8"))
    tags = keap.post(TAGS_URL).respond(200)
    await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])
    assert refresh.call_count == 1
    assert bearer_of(tags.calls.last.request) == "access-8"


async def test_ten_concurrent_calls_cause_one_refresh(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore()

    async def slow_token_endpoint(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.05)  # let every caller pile up behind the refresh
        return token_answer("access-1", "refresh-1")

    refresh = keap.post(TOKEN_URL).mock(side_effect=slow_token_endpoint)
    tags = keap.route(method="POST", url__regex=rf"{BASE_URL}/rest/v1/contacts/\d+/tags").respond(
        200
    )
    client = harness.client(OAUTH_CREDENTIALS, store)
    await asyncio.gather(*(client.add_tags(n, [2]) for n in range(1, 11)))
    assert refresh.call_count == 1
    assert tags.call_count == 10
    assert {bearer_of(call.request) for call in tags.calls} == {"access-1"}


async def test_the_rotated_token_is_saved_before_its_access_token_is_used(
    harness: Harness, keap: respx.MockRouter
) -> None:
    events: list[str] = []
    store = MemoryTokenStore(events=events)

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        events.append("refreshed")
        return token_answer("access-1", "refresh-1")

    def tags_endpoint(request: httpx.Request) -> httpx.Response:
        events.append(f"called with {bearer_of(request)}")
        return httpx.Response(200)

    keap.post(TOKEN_URL).mock(side_effect=token_endpoint)
    keap.post(TAGS_URL).mock(side_effect=tags_endpoint)
    await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])
    assert events == [
        f"saved {ENV_REFRESH_TOKEN}",  # the seed
        "refreshed",
        "saved refresh-1",
        "called with access-1",
    ]


async def test_a_401_refreshes_and_retries_once(harness: Harness, keap: respx.MockRouter) -> None:
    store = MemoryTokenStore(StoredToken("refresh-7", "revoked", in_hours(20), ENV_HASH))

    def tags_endpoint(request: httpx.Request) -> httpx.Response:
        if bearer_of(request) == "revoked":
            return httpx.Response(401, json={"message": "Invalid Access Token"})
        return httpx.Response(200)

    refresh = keap.post(TOKEN_URL).mock(return_value=token_answer("access-8", "refresh-8"))
    tags = keap.post(TAGS_URL).mock(side_effect=tags_endpoint)
    await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])
    assert refresh.call_count == 1
    assert [bearer_of(call.request) for call in tags.calls] == ["revoked", "access-8"]
    assert [(c.operation, c.status_code) for c in harness.calls] == [
        ("tags.add", 401),
        ("oauth.refresh", 200),
        ("tags.add", 200),
    ]
    assert harness.gate.acquired == 2


async def test_a_second_401_is_an_auth_error(harness: Harness, keap: respx.MockRouter) -> None:
    store = MemoryTokenStore(StoredToken("refresh-7", "access-7", in_hours(20), ENV_HASH))
    refresh = keap.post(TOKEN_URL).mock(return_value=token_answer("access-8", "refresh-8"))
    tags = keap.post(TAGS_URL).respond(401, json={"message": "Invalid Access Token"})
    with pytest.raises(KeapAuthError):
        await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])
    assert refresh.call_count == 1
    assert tags.call_count == 2


async def test_concurrent_401s_share_one_refresh(harness: Harness, keap: respx.MockRouter) -> None:
    store = MemoryTokenStore(StoredToken("refresh-7", "revoked", in_hours(20), ENV_HASH))

    def tags_endpoint(request: httpx.Request) -> httpx.Response:
        if bearer_of(request) == "revoked":
            return httpx.Response(401, json={"message": "Invalid Access Token"})
        return httpx.Response(200, json=[{"2": "SUCCESS"}])

    refresh = keap.post(TOKEN_URL).mock(return_value=token_answer("access-8", "refresh-8"))
    keap.route(method="POST", url__regex=rf"{BASE_URL}/rest/v1/contacts/\d+/tags").mock(
        side_effect=tags_endpoint
    )
    client = harness.client(OAUTH_CREDENTIALS, store)
    await asyncio.gather(*(client.add_tags(n, [2]) for n in range(1, 6)))
    assert refresh.call_count == 1


async def test_an_invalid_key_fault_with_oauth_refreshes_and_retries(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore(StoredToken("refresh-7", "revoked", in_hours(20), ENV_HASH))

    def xmlrpc_endpoint(request: httpx.Request) -> httpx.Response:
        if bearer_of(request) == "revoked":
            return xmlrpc_fault(2, "[InvalidKey]Invalid Key")
        return xmlrpc_answer([])

    keap.post(TOKEN_URL).mock(return_value=token_answer("access-8", "refresh-8"))
    route = keap.post(XMLRPC_URL).mock(side_effect=xmlrpc_endpoint)
    await harness.client(OAUTH_CREDENTIALS, store).run_action_set(1, 2)
    assert route.call_count == 2


async def test_losing_the_save_race_uses_the_other_replicas_token(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore(StoredToken("refresh-7", None, None, ENV_HASH))
    theirs = StoredToken("refresh-theirs", "access-theirs", in_hours(24), ENV_HASH)

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        store.token = theirs  # another replica saved its rotation while we were asking
        return token_answer("access-ours", "refresh-ours")

    keap.post(TOKEN_URL).mock(side_effect=token_endpoint)
    tags = keap.post(TAGS_URL).respond(200)
    await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])
    assert bearer_of(tags.calls.last.request) == "access-theirs"
    assert store.token == theirs


async def test_a_token_rotated_by_another_replica_is_adopted_without_a_refresh(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore(StoredToken("refresh-7", "access-7", in_hours(20), ENV_HASH))
    refresh = keap.post(TOKEN_URL).mock(return_value=token_answer("never", "never"))

    def tags_endpoint(request: httpx.Request) -> httpx.Response:
        if bearer_of(request) == "access-7":
            # another replica rotated: Keap now refuses our copy, the store holds the new pair
            store.token = StoredToken("refresh-8", "access-8", in_hours(24), ENV_HASH)
            return httpx.Response(401, json={"message": "Invalid Access Token"})
        return httpx.Response(200)

    tags = keap.post(TAGS_URL).mock(side_effect=tags_endpoint)
    await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])
    assert refresh.call_count == 0
    assert [bearer_of(call.request) for call in tags.calls] == ["access-7", "access-8"]


async def test_invalid_grant_after_another_process_rotated_uses_its_token(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore(StoredToken("refresh-7", None, None, ENV_HASH))
    theirs = StoredToken("refresh-theirs", "access-theirs", in_hours(24), ENV_HASH)

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        store.token = theirs  # it rotated refresh-7 first, so ours is now dead
        return httpx.Response(
            400, json={"error": "invalid_grant", "error_description": "Invalid refresh token"}
        )

    keap.post(TOKEN_URL).mock(side_effect=token_endpoint)
    tags = keap.post(TAGS_URL).respond(200)
    await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])
    assert bearer_of(tags.calls.last.request) == "access-theirs"
    assert harness.calls[0].operation == "oauth.refresh"
    assert harness.calls[0].status_code == 400


async def test_a_refusal_before_the_winning_replica_saved_still_adopts_its_token(
    harness: Harness, keap: respx.MockRouter
) -> None:
    """Two replicas refresh at once: ours is refused before theirs has saved what won."""
    store = MemoryTokenStore(StoredToken("refresh-7", None, None, ENV_HASH))
    theirs = StoredToken("refresh-theirs", "access-theirs", in_hours(24), ENV_HASH)

    async def save_theirs_later() -> None:
        await asyncio.sleep(0.3)
        store.token = theirs

    def token_endpoint(request: httpx.Request) -> httpx.Response:
        asyncio.get_running_loop().create_task(save_theirs_later())
        return httpx.Response(
            400, json={"error": "invalid_request", "error_description": "Invalid Refresh Token"}
        )

    keap.post(TOKEN_URL).mock(side_effect=token_endpoint)
    tags = keap.post(TAGS_URL).respond(200)
    await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])
    assert bearer_of(tags.calls.last.request) == "access-theirs"


async def test_invalid_grant_with_nothing_newer_stored_is_an_auth_error(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore(StoredToken("refresh-7", None, None, ENV_HASH))
    refresh = keap.post(TOKEN_URL).respond(
        400, json={"error": "invalid_grant", "error_description": "Invalid refresh token"}
    )
    tags = keap.post(TAGS_URL).respond(200)
    with pytest.raises(KeapAuthError) as caught:
        await harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2])
    assert caught.value.oauth_error == "invalid_grant"
    assert refresh.call_count == 1
    assert tags.call_count == 0


async def test_bad_client_credentials_are_an_auth_error(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.post(TOKEN_URL).respond(401, json={"error": "invalid_client"})
    with pytest.raises(KeapAuthError, match="invalid_client"):
        await harness.client(OAUTH_CREDENTIALS, MemoryTokenStore()).probe_auth()


async def test_no_refresh_token_anywhere_is_an_auth_error(
    harness: Harness, keap: respx.MockRouter
) -> None:
    credentials = KeapCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with pytest.raises(KeapAuthError, match="no OAuth refresh token"):
        await harness.client(credentials, MemoryTokenStore()).probe_auth()
    assert harness.calls == []


async def test_a_rotation_that_could_not_be_saved_is_kept_and_saved_later(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore(StoredToken("refresh-7", None, None, ENV_HASH))
    refresh = keap.post(TOKEN_URL).mock(return_value=token_answer("access-8", "refresh-8"))
    tags = keap.post(TAGS_URL).respond(200)
    client = harness.client(OAUTH_CREDENTIALS, store)
    store.fail_saves = 1
    with pytest.raises(KeapTransientError, match="could not save"):
        await client.add_tags(1, [2])
    assert tags.call_count == 0  # never used before it is saved
    await client.add_tags(1, [2])
    assert refresh.call_count == 1  # refresh-7 is dead: the held rotation is saved instead
    assert store.token is not None
    assert store.token.refresh_token == "refresh-8"
    assert bearer_of(tags.calls.last.request) == "access-8"


async def test_a_token_store_outage_is_transient(harness: Harness, keap: respx.MockRouter) -> None:
    class BrokenStore(MemoryTokenStore):
        async def load_oauth_token(self) -> StoredToken | None:
            raise ConnectionError("database unavailable")

    with pytest.raises(KeapTransientError, match="could not read"):
        await harness.client(OAUTH_CREDENTIALS, BrokenStore()).probe_auth()


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_token_endpoint_gateway_failure_never_makes_the_call_maybe_applied(
    harness: Harness, keap: respx.MockRouter, status: int
) -> None:
    """The refresh failed before the CRM call was sent: even an action set may be retried."""
    store = MemoryTokenStore(StoredToken("refresh-7", None, None, ENV_HASH))
    keap.post(TOKEN_URL).respond(status, json={"message": "Bad Gateway"})
    rpc = keap.post(XMLRPC_URL).respond(200)
    with pytest.raises(KeapTransientError) as caught:
        await harness.client(OAUTH_CREDENTIALS, store).run_action_set(1, 42)
    assert caught.value.maybe_applied is False
    assert rpc.call_count == 0


class SlowSavingStore(MemoryTokenStore):
    """A token store whose save takes a while: long enough to be cancelled in the middle."""

    def __init__(self, token: StoredToken) -> None:
        super().__init__(token)
        self.saving = asyncio.Event()

    async def save_oauth_token(
        self, token: StoredToken, *, previous_refresh_token: str | None
    ) -> bool:
        self.saving.set()
        await asyncio.sleep(0.2)
        return await super().save_oauth_token(token, previous_refresh_token=previous_refresh_token)


async def test_a_rotation_cancelled_before_its_save_is_still_saved(
    harness: Harness, keap: respx.MockRouter
) -> None:
    """Keap killed refresh-7 when it answered: a worker stopping (or a delivery cancelled)
    between that answer and the save must not leave refresh-7 stored."""
    store = SlowSavingStore(StoredToken("refresh-7", None, None, ENV_HASH))
    keap.post(TOKEN_URL).mock(return_value=token_answer("access-8", "refresh-8"))
    keap.post(TAGS_URL).respond(200)
    call = asyncio.create_task(harness.client(OAUTH_CREDENTIALS, store).add_tags(1, [2]))
    await asyncio.wait_for(store.saving.wait(), timeout=5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert store.token is not None
    assert store.token.refresh_token == "refresh-8"
