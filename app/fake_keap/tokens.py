"""OAuth2 tokens as Keap rotates them: one live refresh token, which each refresh replaces."""

from __future__ import annotations

import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


class TokenStore:
    """Not thread-safe: ``FakeKeapState`` calls it under its lock."""

    def __init__(self) -> None:
        self.refresh_token: str | None = None
        self.refreshes = 0
        self._access_expiry: dict[str, float] = {}

    def refresh(self, presented: str, now: float, lifetime: float) -> IssuedTokens | None:
        """Rotate: the presented token must be the live one, and dies on use."""
        if self.refresh_token is None or not secrets.compare_digest(
            presented.encode(), self.refresh_token.encode()
        ):
            return None
        self.refresh_token = "fake-rt-" + secrets.token_urlsafe(18)
        self.refreshes += 1
        access_token = self.issue_access_token(now, lifetime)
        return IssuedTokens(access_token, self.refresh_token, max(1, round(lifetime)))

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
