"""The fake's OAuth: each way Keap refuses a refresh token, the authorize page and the
authorization-code grant, and a 403 on one tag while the credential works."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from fake_keap import FakeKeapServer

REDIRECT = "http://127.0.0.1:8765/callback"


def authorize(fake: FakeKeapServer, **query: str) -> httpx.Response:
    params = {
        "client_id": "client-1",
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "scope": "full",
        **query,
    }
    return httpx.get(fake.authorize_url, params=params, follow_redirects=False)


def exchange(fake: FakeKeapServer, code: str, redirect_uri: str = REDIRECT) -> httpx.Response:
    return httpx.post(
        fake.token_url,
        data={
            "client_id": "client-1",
            "client_secret": "secret-1",
            "code": code,
            "grant_type": "authorization_code",
            "redirect_uri": redirect_uri,
        },
    )


@pytest.mark.parametrize(
    ("kind", "status", "body"),
    [
        (
            "invalid_grant",
            400,
            {"error": "invalid_grant", "error_description": "Invalid refresh token"},
        ),
        (
            "invalid_request",
            400,
            {"error": "invalid_request", "error_description": "Invalid Refresh Token"},
        ),
        (
            "invalid_client",
            401,
            {"error": "invalid_client", "error_description": "Client authentication failed"},
        ),
        ("bare_400", 400, None),
        ("bare_401", 401, None),
    ],
)
def test_a_revoked_refresh_token_is_refused_the_configured_way(
    fake: FakeKeapServer, kind: str, status: int, body: dict[str, str] | None
) -> None:
    control = {"refresh_refusal": kind, "revoke_refresh_token": True}
    assert httpx.post(f"{fake.control_url}/config", json=control).status_code == 200

    response = httpx.post(
        fake.token_url,
        data={"grant_type": "refresh_token", "refresh_token": "refresh-0"},
        auth=("client-1", "secret-1"),
    )

    assert response.status_code == status
    assert (response.json() if body is not None else response.content) == (body or b"")
    assert fake.state.refresh_token is None


def test_the_authorize_page_redirects_with_a_code_that_buys_tokens_once(
    fake: FakeKeapServer,
) -> None:
    page = authorize(fake, state="s-1")
    assert page.status_code == 302
    location = urlsplit(page.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
    query = parse_qs(location.query)
    assert query["state"] == ["s-1"]

    tokens = exchange(fake, query["code"][0])
    assert tokens.status_code == 200, tokens.text
    issued = tokens.json()
    assert issued["refresh_token"] == fake.state.refresh_token != "refresh-0"
    bearer = {"Authorization": f"Bearer {issued['access_token']}"}
    assert httpx.get(fake.base_url + "/rest/v1/oauth/connect/userinfo", headers=bearer).is_success

    again = exchange(fake, query["code"][0])
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


def test_a_code_is_refused_with_another_redirect_uri_or_an_unknown_client(
    fake: FakeKeapServer,
) -> None:
    code = parse_qs(urlsplit(authorize(fake).headers["location"]).query)["code"][0]
    assert exchange(fake, code, "http://127.0.0.1:1/elsewhere").status_code == 400
    assert authorize(fake, client_id="someone-else").status_code == 400


def test_a_forbidden_tag_answers_403_while_the_probe_and_other_tags_pass(
    fake: FakeKeapServer, keap: httpx.Client
) -> None:
    fake.state.configure(forbidden_tag_ids={666})
    contact = keap.put(
        "/rest/v1/contacts",
        json={"email_addresses": [{"email": "a@x.test", "field": "EMAIL1"}]},
    ).json()["id"]

    barred = keap.post(f"/rest/v1/contacts/{contact}/tags", json={"tagIds": [666]})
    allowed = keap.post(f"/rest/v1/contacts/{contact}/tags", json={"tagIds": [101]})

    assert barred.status_code == 403
    assert "666" in barred.json()["message"]
    assert allowed.status_code == 200
    assert keap.get("/rest/v1/oauth/connect/userinfo").status_code == 200
    assert fake.state.tags_of(contact) == {101}


def refresh(fake: FakeKeapServer, token: str) -> httpx.Response:
    return httpx.post(
        fake.token_url,
        data={"grant_type": "refresh_token", "refresh_token": token},
        auth=("client-1", "secret-1"),
    )


def test_a_refresh_token_unused_for_45_days_has_died(fake: FakeKeapServer) -> None:
    """Keap: a refresh token unused for 45 days expires. Each refresh issues a new one,
    whose 45 days start then; a token past them is refused, and stays so."""
    age = {"age_refresh_token_days": 44.9}
    assert httpx.post(f"{fake.control_url}/config", json=age).status_code == 200
    rotated = refresh(fake, "refresh-0")
    assert rotated.status_code == 200, rotated.text
    token = rotated.json()["refresh_token"]

    assert httpx.post(f"{fake.control_url}/config", json=age).status_code == 200
    token = refresh(fake, token).json()["refresh_token"]  # 44.9 days again: still alive

    late = {"age_refresh_token_days": 45}
    assert httpx.post(f"{fake.control_url}/config", json=late).status_code == 200
    refused = refresh(fake, token)
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
    assert fake.state.refresh_token is None


def test_a_reset_keeps_the_refresh_tokens_age(fake: FakeKeapServer) -> None:
    """A reset forgets records, not time: 44.9 days before it and 0.2 after make 45.1."""
    before = {"age_refresh_token_days": 44.9}
    assert httpx.post(f"{fake.control_url}/config", json=before).status_code == 200
    assert httpx.post(f"{fake.control_url}/reset", json={}).status_code == 200
    after = {"age_refresh_token_days": 0.2}
    assert httpx.post(f"{fake.control_url}/config", json=after).status_code == 200
    refused = refresh(fake, "refresh-0")
    assert (refused.status_code, refused.json()["error"]) == (400, "invalid_grant")
