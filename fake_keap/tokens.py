"""OAuth2 tokens as Keap rotates them: one live refresh token, which each refresh replaces,
and single-use authorization codes from the authorize page."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from fake_keap.behaviour import FakeBehaviour


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


# RFC 6749 §4.1.2 recommends codes live at most 10 minutes; Keap's lifetime is unpublished.
CODE_LIFETIME_SECONDS = 600.0


@dataclass(frozen=True)
class _Grant:
    redirect_uri: str
    expires_at: float


class TokenStore:
    """Not thread-safe: ``FakeKeapState`` calls it under its lock."""

    def __init__(self) -> None:
        self.refresh_token: str | None = None
        self.refresh_token_issued_at = 0.0  # monotonic; moved back by ``age_refresh_token``
        self.refreshes = 0
        self.codes_redeemed = 0
        self._access_expiry: dict[str, float] = {}
        self._codes: dict[str, _Grant] = {}

    def issue_code(self, redirect_uri: str, now: float) -> str:
        code = "fake-code-" + secrets.token_urlsafe(12)
        self._codes[code] = _Grant(redirect_uri, now + CODE_LIFETIME_SECONDS)
        return code

    def redeem_code(
        self, code: str, redirect_uri: str, now: float, lifetime: float
    ) -> IssuedTokens | None:
        """A code works once, with the redirect URI it was issued for; the tokens it buys
        replace any live refresh token (a new authorisation supersedes the old)."""
        grant = self._codes.pop(code, None)
        if grant is None or grant.expires_at <= now or grant.redirect_uri != redirect_uri:
            return None
        refresh_token = self._new_refresh_token(now)
        self.codes_redeemed += 1
        access_token = self.issue_access_token(now, lifetime)
        return IssuedTokens(access_token, refresh_token, max(1, round(lifetime)))

    def set_refresh_token(self, token: str | None, now: float) -> None:
        self.refresh_token = token
        self.refresh_token_issued_at = now

    def _new_refresh_token(self, now: float) -> str:
        token = "fake-rt-" + secrets.token_urlsafe(18)
        self.set_refresh_token(token, now)
        return token

    def refresh(self, presented: str, now: float, behaviour: FakeBehaviour) -> IssuedTokens | None:
        """Rotate: the presented token must be the live one, used within the behaviour's
        ``refresh_token_idle_lifetime`` of its issue (else it has died), and dies on use."""
        lifetime = behaviour.access_token_lifetime
        if now - self.refresh_token_issued_at >= behaviour.refresh_token_idle_lifetime:
            self.refresh_token = None  # expired unused: refused from now on
        if self.refresh_token is None or not secrets.compare_digest(
            presented.encode(), self.refresh_token.encode()
        ):
            return None
        refresh_token = self._new_refresh_token(now)
        self.refreshes += 1
        access_token = self.issue_access_token(now, lifetime)
        return IssuedTokens(access_token, refresh_token, max(1, round(lifetime)))

    def issue_access_token(self, now: float, lifetime: float) -> str:
        self._forget_expired(now)
        token = "fake-at-" + secrets.token_urlsafe(18)
        self._access_expiry[token] = now + lifetime
        return token

    def is_valid_access_token(self, token: str, now: float) -> bool:
        expiry = self._access_expiry.get(token)
        return expiry is not None and now < expiry

    def expire_access_tokens(self) -> None:
        self._access_expiry.clear()

    def _forget_expired(self, now: float) -> None:
        expired = [token for token, expiry in self._access_expiry.items() if expiry <= now]
        for token in expired:
            del self._access_expiry[token]


def client_matches(behaviour: FakeBehaviour, client_id: str, client_secret: str) -> bool:
    """Whether the OAuth client presented is the one the fake knows (compared in constant
    time)."""
    expected_id = behaviour.oauth_client_id
    expected_secret = behaviour.oauth_client_secret
    if expected_id is None or expected_secret is None:
        return False
    return secrets.compare_digest(client_id.encode(), expected_id.encode()) and (
        secrets.compare_digest(client_secret.encode(), expected_secret.encode())
    )
