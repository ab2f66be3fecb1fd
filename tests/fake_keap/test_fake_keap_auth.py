"""Credentials: API keys on REST and XML-RPC, OAuth2 refresh rotation, revoked keys."""

from __future__ import annotations

import time
import xmlrpc.client
from collections.abc import Callable
from typing import Any

import httpx

from fake_keap import FakeKeapServer

PROFILE = "/rest/v1/oauth/connect/userinfo"


def refresh(fake: FakeKeapServer, token: str, secret: str = "secret-1") -> httpx.Response:
    return httpx.post(
        fake.token_url,
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=("client-1", secret),
    )


def test_rest_accepts_the_valid_key_and_rejects_others(fake: FakeKeapServer) -> None:
    with httpx.Client(base_url=fake.base_url) as client:
        good = client.get(PROFILE, headers={"X-Keap-API-Key": "key-good"})
        bad = client.get(PROFILE, headers={"X-Keap-API-Key": "key-bad"})
        missing = client.get(PROFILE)

    assert good.status_code == 200
    assert (bad.status_code, bad.json()) == (401, {"message": "Invalid API key"})
    assert missing.status_code == 401
    assert [r.auth for r in fake.state.requests] == ["key", "key", "none"]


def test_xmlrpc_rejects_a_bad_key_with_an_invalid_key_fault(
    fake: FakeKeapServer, rpc: Callable[..., Any]
) -> None:
    with httpx.Client(base_url=fake.base_url, headers={"X-Keap-API-Key": "key-bad"}) as bad:
        fault = rpc(
            "ContactService.addWithDupCheck", "key-bad", {"Email": "a@x.test"}, "Email", client=bad
        )

    assert isinstance(fault, xmlrpc.client.Fault)
    assert (fault.faultCode, fault.faultString) == (2, "[InvalidKey]Invalid Key")
    assert fake.state.contacts == []


def test_xmlrpc_reads_the_key_from_the_header_only(
    fake: FakeKeapServer, rpc: Callable[..., Any]
) -> None:
    """A PAT/SAK authenticates XML-RPC by its header; the key parameter is a placeholder."""
    with httpx.Client(base_url=fake.base_url) as bare:
        refused = rpc(
            "ContactService.addWithDupCheck",
            "key-good",
            {"Email": "a@x.test"},
            "Email",
            client=bare,
        )
    with httpx.Client(base_url=fake.base_url, headers={"X-Keap-API-Key": "key-good"}) as keyed:
        contact_id = rpc(
            "ContactService.addWithDupCheck",
            "placeholder",
            {"Email": "a@x.test"},
            "Email",
            client=keyed,
        )

    assert isinstance(refused, xmlrpc.client.Fault)
    assert refused.faultCode == 2
    assert fake.state.contact(contact_id) is not None
    assert [r.auth for r in fake.state.requests] == ["none", "key"]


def test_valid_keys_can_change_while_running(fake: FakeKeapServer, keap: httpx.Client) -> None:
    fake.state.set_valid_keys({"key-new"})
    assert keap.get(PROFILE).status_code == 401

    keap.headers["X-Keap-API-Key"] = "key-new"
    assert keap.get(PROFILE).status_code == 200


def test_rejecting_all_credentials_simulates_a_revoked_key(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    fake.state.set_reject_all_credentials()
    assert keap.get(PROFILE).status_code == 401
    assert refresh(fake, "refresh-0").json()["error"] == "invalid_grant"

    fake.state.set_reject_all_credentials(False)
    assert keap.get(PROFILE).status_code == 200


def test_refresh_rotates_the_refresh_token(fake: FakeKeapServer) -> None:
    first = refresh(fake, "refresh-0")
    assert first.status_code == 200
    tokens = first.json()
    assert tokens["refresh_token"] != "refresh-0"
    assert (tokens["expires_in"], tokens["token_type"], tokens["scope"]) == (
        86400,
        "bearer",
        "full",
    )

    reused = refresh(fake, "refresh-0")
    assert (reused.status_code, reused.json()) == (
        400,
        {"error": "invalid_grant", "error_description": "Invalid refresh token"},
    )
    assert refresh(fake, tokens["refresh_token"]).status_code == 200
    assert fake.state.refresh_count == 2

    with httpx.Client(base_url=fake.base_url) as client:
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert client.get(PROFILE, headers=bearer).status_code == 200


def test_refresh_with_wrong_client_secret_is_invalid_client(fake: FakeKeapServer) -> None:
    response = refresh(fake, "refresh-0", secret="wrong")

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert fake.state.refresh_token == "refresh-0"


def test_access_tokens_expire_after_their_configured_lifetime(fake: FakeKeapServer) -> None:
    fake.state.configure(access_token_lifetime=0.2)
    tokens = refresh(fake, "refresh-0").json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

    with httpx.Client(base_url=fake.base_url, headers=bearer) as client:
        assert client.get(PROFILE).status_code == 200
        time.sleep(0.3)
        expired = client.get(PROFILE)

    # Keap's gateway (Apigee) envelope, as KEAP_API_NOTES records it.
    assert (expired.status_code, expired.json()) == (
        401,
        {
            "fault": {
                "faultstring": "Invalid Access Token",
                "detail": {"errorcode": "keymanagement.service.invalid_access_token"},
            }
        },
    )


def test_a_refresh_whose_answer_is_lost_still_rotates_the_token(fake: FakeKeapServer) -> None:
    fake.state.fail_next("drop", operation="oauth.refresh", after_handling=True)

    try:
        refresh(fake, "refresh-0")
        raise AssertionError("the connection should have been dropped")
    except httpx.TransportError:
        pass

    assert fake.state.refresh_count == 1
    assert refresh(fake, "refresh-0").status_code == 400
    assert refresh(fake, fake.state.refresh_token or "").status_code == 200
