"""What a person may paste into `relay keap login`, and the URL it prints."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from app.keap.login import LoginError, authorize_url, check_callback, read_callback


@pytest.mark.parametrize(
    "pasted",
    [
        "abc123\n",
        "https://shop.example/cb?code=abc123&scope=full&state=s1",
        "/callback?code=abc123&state=s1",
        "code=abc123&state=s1",
    ],
)
def test_a_code_or_the_redirected_address_gives_the_code(pasted: str) -> None:
    assert check_callback(read_callback(pasted), "s1") == "abc123"


@pytest.mark.parametrize(
    ("pasted", "reason"),
    [
        ("https://shop.example/cb?code=abc123&state=other", "state does not match"),
        ("https://shop.example/cb?error=access_denied", "access_denied"),
        ("\n", "no authorization code"),
    ],
)
def test_a_denied_foreign_or_empty_answer_is_refused_with_the_reason(
    pasted: str, reason: str
) -> None:
    with pytest.raises(LoginError, match=reason):
        check_callback(read_callback(pasted), "s1")


def test_the_authorize_url_carries_what_keap_documents() -> None:
    url = authorize_url(
        "https://accounts.infusionsoft.com/app/oauth/authorize",
        "client-1",
        "http://127.0.0.1:8765/callback",
        "s1",
    )
    parts = urlsplit(url)
    assert parts.netloc == "accounts.infusionsoft.com"
    assert parse_qs(parts.query) == {
        "client_id": ["client-1"],
        "redirect_uri": ["http://127.0.0.1:8765/callback"],
        "response_type": ["code"],
        "scope": ["full"],
        "state": ["s1"],
    }
