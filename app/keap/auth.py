"""OAuth2 tokens for Keap, safe across restarts and replicas.

Keap rotates the refresh token on every refresh and kills the old one, so:
- the environment's refresh token only seeds the token store; the stored one wins on
  restart unless the operator put a different token in the environment (re-authorised);
- a refresh is single-flight within the process (one lock);
- the rotated pair is saved (compare-and-swap) before its access token is used, and a
  replica that loses the swap, or hears ``invalid_grant``, adopts what the store now holds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from app.keap.errors import (
    REDACTED,
    KeapAuthError,
    KeapPermanentError,
    KeapTransientError,
    classify_http_error,
    classify_unexpected_body,
)
from app.keap.exchange import Reply, traced
from app.keap.models import KeapCall, StoredToken, TokenStore

OPERATION = "oauth.refresh"
REFRESH_MARGIN_SECONDS = 300.0
DEFAULT_ACCESS_LIFETIME_SECONDS = 86400.0
# Rounds of adopt-or-refresh before giving up for now; each lost race is another replica's
# success, so a handful only runs out under pathological contention.
MAX_REFRESH_ROUNDS = 4


def seed_hash(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class _UnsavedRotation:
    token: StoredToken
    previous_refresh_token: str


class OAuthSession:
    """Hands out a usable access token, refreshing and persisting as needed."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        env_refresh_token: str | None,
        store: TokenStore,
        report: Callable[[KeapCall], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._client = (client_id, client_secret)
        self._env_refresh_token = env_refresh_token
        self._store = store
        self._report = report
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: StoredToken | None = None
        self._unsaved: _UnsavedRotation | None = None

    def secrets(self) -> list[str]:
        tokens = [self._token, self._unsaved.token if self._unsaved else None]
        found = [self._client[1], self._env_refresh_token]
        for token in tokens:
            if token is not None:
                found += [token.refresh_token, token.access_token]
        return [secret for secret in found if secret]

    async def access_token(self) -> str:
        access = self._usable_access(rejected=None)
        if access is not None:
            return access
        async with self._lock:
            return await self._settle(rejected=None)

    async def replace_rejected(self, rejected: str) -> str:
        """Keap refused ``rejected``: a fresh token (one refresh however many callers saw it)."""
        async with self._lock:
            return await self._settle(rejected=rejected)

    async def _settle(self, rejected: str | None) -> str:
        if self._unsaved is not None:
            await self._save_unsaved_rotation()
        if self._token is None:
            self._token = await self._load_or_seed()
        rounds = 0
        while (access := self._usable_access(rejected)) is None:
            if rounds == MAX_REFRESH_ROUNDS:
                raise KeapTransientError(OPERATION, "the OAuth token kept changing; will retry")
            rounds += 1
            await self._refresh_round()
        return access

    def _usable_access(self, rejected: str | None) -> str | None:
        token = self._token
        if token is None or not token.access_token or token.access_token == rejected:
            return None
        expires_at = token.access_expires_at
        if expires_at is None or expires_at - self._clock() <= REFRESH_MARGIN_SECONDS:
            return None
        return token.access_token

    async def _load_or_seed(self) -> StoredToken:
        stored = await self._load()
        env_token = self._env_refresh_token
        if env_token is None:
            if stored is None:
                raise KeapAuthError(OPERATION, "no OAuth refresh token is stored or configured")
            return stored
        env_hash = seed_hash(env_token)
        if stored is not None and stored.seed_hash == env_hash:
            return stored  # the database's (possibly rotated) token wins on restart
        seeded = StoredToken(env_token, None, None, env_hash)
        previous = stored.refresh_token if stored is not None else None
        if await self._save(seeded, previous):
            return seeded
        return await self._load_required()  # another replica seeded or rotated first

    async def _refresh_round(self) -> None:
        """One step toward a usable token: adopt the store's newer token, or rotate ours."""
        current = self._token
        assert current is not None
        stored = await self._load()
        if stored is not None and stored.refresh_token != current.refresh_token:
            self._token = stored  # another replica rotated since we last looked
            return
        try:
            rotated = await self._request_rotation(current)
        except KeapAuthError as err:
            if err.oauth_error != "invalid_grant":
                raise
            stored = await self._load()
            if stored is None or stored.refresh_token == current.refresh_token:
                raise
            self._token = stored  # rotated by another process while we asked
            return
        try:
            saved = await self._save(rotated, current.refresh_token)
        except KeapTransientError:
            # Keap already killed the old token: keep the new one and keep trying to save it.
            self._unsaved = _UnsavedRotation(rotated, current.refresh_token)
            raise
        self._token = rotated if saved else await self._load_required()

    async def _save_unsaved_rotation(self) -> None:
        pending = self._unsaved
        assert pending is not None
        saved = await self._save(pending.token, pending.previous_refresh_token)
        self._unsaved = None
        self._token = pending.token if saved else await self._load_required()

    async def _request_rotation(self, current: StoredToken) -> StoredToken:
        async with traced(OPERATION, "POST", self._token_url, self.secrets, self._report) as call:
            reply = await call.send(
                self._http,
                "POST",
                self._token_url,
                headers={"Accept": "application/json"},
                data={"grant_type": "refresh_token", "refresh_token": current.refresh_token},
                auth=self._client,
            )
            return self._rotated_token(reply, current)

    def _rotated_token(self, reply: Reply, current: StoredToken) -> StoredToken:
        if not reply.ok:
            safe = reply.scrubbed(self.secrets(), REDACTED.encode())
            raise classify_http_error(OPERATION, safe.status, safe.headers, safe.body)
        try:
            payload = json.loads(reply.body)
        except ValueError:
            # Never quote a token response: only a foreign page's text reaches the detail.
            raise classify_unexpected_body(
                OPERATION, reply.status, reply.body, expected="json", problem="not JSON"
            ) from None
        access = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(access, str) or not access:
            raise KeapPermanentError(
                OPERATION, "the token response has no access_token", status_code=reply.status
            )
        refresh = payload.get("refresh_token")
        if not isinstance(refresh, str) or not refresh:
            refresh = current.refresh_token  # no rotation offered: the old one still holds
        lifetime = payload.get("expires_in")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_ACCESS_LIFETIME_SECONDS
        return StoredToken(
            refresh_token=refresh,
            access_token=access,
            access_expires_at=self._clock() + float(lifetime),
            seed_hash=current.seed_hash,
        )

    async def _load(self) -> StoredToken | None:
        try:
            return await self._store.load_oauth_token()
        except Exception as exc:  # the store is the lead's (a database): any failure is an outage
            raise KeapTransientError(
                OPERATION, f"could not read the OAuth token store ({type(exc).__name__})"
            ) from exc

    async def _load_required(self) -> StoredToken:
        stored = await self._load()
        if stored is None:
            raise KeapTransientError(OPERATION, "the OAuth token store lost its token; will retry")
        return stored

    async def _save(self, token: StoredToken, previous: str | None) -> bool:
        try:
            return await self._store.save_oauth_token(token, previous_refresh_token=previous)
        except Exception as exc:
            raise KeapTransientError(
                OPERATION, f"could not save the OAuth token ({type(exc).__name__})"
            ) from exc
