"""No credential ever reaches an error's text or a call report, even when Keap echoes it."""

from __future__ import annotations

import time

import httpx
import pytest
import respx

from app.keap.client import ContactFields, KeapCredentials, StoredToken
from app.keap.errors import KeapError

from .keap_fakes import (
    API_KEY,
    BASE_URL,
    CLIENT_SECRET,
    ENV_REFRESH_TOKEN,
    KEY_CREDENTIALS,
    OAUTH_CREDENTIALS,
    TOKEN_URL,
    XMLRPC_URL,
    Harness,
    MemoryTokenStore,
    sha256_hex,
    token_answer,
)

ACCESS = "access-7e2a91c4d0"
REFRESH = "refresh-b3f0c81e55"
ALL_SECRETS = [API_KEY, CLIENT_SECRET, ENV_REFRESH_TOKEN, ACCESS, REFRESH]


def assert_no_secret(text: str) -> None:
    for secret in ALL_SECRETS:
        assert secret not in text


def assert_nothing_leaked(error: KeapError, harness: Harness) -> None:
    assert_no_secret(str(error))
    assert_no_secret(repr(error))
    assert_no_secret(error.detail)
    for call in harness.calls:
        assert_no_secret(repr(call))


async def test_a_key_echoed_in_an_error_body_is_redacted(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.put(f"{BASE_URL}/rest/v1/contacts").respond(
        400, json={"message": f"Malformed request for key {API_KEY}"}
    )
    with pytest.raises(KeapError) as caught:
        await harness.client().upsert_contact(ContactFields("a@b.c"))
    assert "[redacted]" in caught.value.detail
    assert_nothing_leaked(caught.value, harness)


async def test_a_key_echoed_in_an_xmlrpc_fault_is_redacted(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.post(XMLRPC_URL).respond(
        200,
        content=(
            "<?xml version='1.0'?><methodResponse><fault><value><struct>"
            "<member><name>faultCode</name><value><int>2</int></value></member>"
            f"<member><name>faultString</name><value><string>[InvalidKey]Invalid Key: {API_KEY}"
            "</string></value></member></struct></value></fault></methodResponse>"
        ).encode(),
    )
    with pytest.raises(KeapError) as caught:
        await harness.client().run_action_set(1, 2)
    assert_nothing_leaked(caught.value, harness)


async def test_a_transport_error_quoting_a_secret_is_redacted(
    harness: Harness, keap: respx.MockRouter
) -> None:
    keap.delete(f"{BASE_URL}/rest/v1/contacts/1/tags/2").mock(
        side_effect=httpx.RemoteProtocolError(f"bad header X-Keap-API-Key: {API_KEY}")
    )
    with pytest.raises(KeapError) as caught:
        await harness.client().remove_tag(1, 2)
    assert_nothing_leaked(caught.value, harness)


async def test_token_endpoint_errors_quoting_tokens_are_redacted(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore(StoredToken(REFRESH, None, None, sha256_hex(ENV_REFRESH_TOKEN)))
    keap.post(TOKEN_URL).respond(
        400,
        json={
            "error": "invalid_grant",
            "error_description": f"Invalid refresh token {REFRESH} for client {CLIENT_SECRET}",
        },
    )
    with pytest.raises(KeapError) as caught:
        await harness.client(OAUTH_CREDENTIALS, store).probe_auth()
    assert "invalid_grant" in str(caught.value)
    assert_nothing_leaked(caught.value, harness)


async def test_a_bearer_echoed_by_a_401_is_redacted(
    harness: Harness, keap: respx.MockRouter
) -> None:
    store = MemoryTokenStore(
        StoredToken(REFRESH, ACCESS, time.time() + 7200, sha256_hex(ENV_REFRESH_TOKEN))
    )
    keap.post(TOKEN_URL).mock(return_value=token_answer(ACCESS, REFRESH))
    keap.get(f"{BASE_URL}/rest/v1/oauth/connect/userinfo").respond(
        401, json={"message": f"Invalid Access Token {ACCESS}"}
    )
    with pytest.raises(KeapError) as caught:
        await harness.client(OAUTH_CREDENTIALS, store).probe_auth()
    assert_nothing_leaked(caught.value, harness)


def test_credentials_and_tokens_do_not_show_secrets_in_repr() -> None:
    credentials = KeapCredentials(
        api_key=API_KEY,
        client_id="id",
        client_secret=CLIENT_SECRET,
        refresh_token=ENV_REFRESH_TOKEN,
    )
    assert_no_secret(repr(credentials))
    assert_no_secret(repr(StoredToken(REFRESH, ACCESS, 1.0, None)))
    assert KEY_CREDENTIALS.mode == "key"
    assert OAUTH_CREDENTIALS.mode == "oauth"
    assert KeapCredentials().mode == "none"
