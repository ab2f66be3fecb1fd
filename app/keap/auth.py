"""OAuth2 tokens for Keap, safe across restarts and replicas.

Keap rotates the refresh token on every refresh and kills the old one, so:
- the environment's refresh token only seeds the token store; the stored one wins on
  restart unless the operator put a different token in the environment (re-authorised);
- a refresh is single-flight within the process (one lock);
- the rotated pair is saved (compare-and-swap) before its access token is used, and a
  replica that loses the swap, or whose refresh Keap refuses, adopts what the store now
  holds (another replica, or `relay keap login`, may have stored a newer token);
- a refresh token unused for 45 days dies at Keap, so ``refresh_if_older_than`` rotates it
  on a schedule even when no event needs a call.

What cannot be closed: Keap kills the old refresh token when it answers a refresh, so a
process that dies between that answer and the save loses the new token, and the stored
one is then refused. The relay pauses delivery and says how to re-authorise
(``errors.REAUTHORISE``); docs/operations.md, "When Infusionsoft refuses the credentials".
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from app.keap.errors import (
    TOKEN_OPERATION,
    KeapAuthError,
    KeapPermanentError,
    KeapTransientError,
    classify_token_error,
    classify_unexpected_body,
)
from app.keap.exchange import Reply, traced
from app.keap.models import KeapCall, StoredToken, TokenStore
from app.observability.secrets import REDACTED

OPERATION = TOKEN_OPERATION
REFRESH_MARGIN_SECONDS = 300.0
DEFAULT_ACCESS_LIFETIME_SECONDS = 86400.0
# Rounds of adopt-or-refresh before giving up for now; each lost race is another replica's
# success, so a handful only runs out under pathological contention.
MAX_REFRESH_ROUNDS = 4
# After a refusal, how long to keep looking for a token another replica is saving.
REFUSAL_RECHECK_DELAYS = (0.1, 0.3, 0.6)


def seed_hash(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()


async def request_tokens(
    http: httpx.AsyncClient,
    token_url: str,
    form: dict[str, str],
    *,
    auth: tuple[str, str] | None,
    secrets: Callable[[], list[str]],
    report: Callable[[KeapCall], None],
    seed_hash: str | None,
    previous_refresh_token: str | None = None,
    clock: Callable[[], float] = time.time,
) -> StoredToken:
    """One POST to Keap's token endpoint (any grant) and its answer as a token to store."""
    try:
        async with traced(OPERATION, "POST", token_url, secrets, report) as call:
            reply = await call.send(
                http,
                "POST",
                token_url,
                headers={"Accept": "application/json"},
                data=form,
                auth=auth,
            )
            if not reply.ok:
                safe = reply.scrubbed(secrets(), REDACTED.encode())
                raise classify_token_error(OPERATION, safe.status, safe.headers, safe.body)
            return _issued_token(reply, previous_refresh_token, seed_hash, clock())
    except KeapTransientError as err:
        # Whatever became of the refresh, no CRM call was sent: the step that needed a token
        # is safe to retry, even one that must not run twice.
        err.maybe_applied = False
        raise


def _issued_token(
    reply: Reply, previous_refresh_token: str | None, seed: str | None, now: float
) -> StoredToken:
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
        if previous_refresh_token is None:
            raise KeapPermanentError(
                OPERATION, "the token response has no refresh_token", status_code=reply.status
            )
        refresh = previous_refresh_token  # no rotation offered: the old one still holds
    lifetime = payload.get("expires_in")
    if not isinstance(lifetime, int | float) or lifetime <= 0:
        lifetime = DEFAULT_ACCESS_LIFETIME_SECONDS
    return StoredToken(
        refresh_token=refresh,
        access_token=access,
        access_expires_at=now + float(lifetime),
        seed_hash=seed,
        stored_at=now,
    )


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

    async def access_token(self, report: Callable[[KeapCall], None] | None = None) -> str:
        """A usable access token; ``report`` (default: the session's) hears of any refresh
        made for it, so the refresh lands in the history of the step that needed it."""
        access = self._usable_access(rejected=None)
        if access is not None:
            return access
        async with self._lock:
            return await self._settle(None, report or self._report)

    async def replace_rejected(
        self, rejected: str, report: Callable[[KeapCall], None] | None = None
    ) -> str:
        """Keap refused ``rejected``: a fresh token (one refresh however many callers saw it)."""
        async with self._lock:
            return await self._settle(rejected, report or self._report)

    async def refresh_if_older_than(self, max_age_seconds: float) -> bool:
        """Rotate the refresh token if it was stored ``max_age_seconds`` ago or more (another
        replica's recent rotation counts); True when this call rotated or adopted one."""
        async with self._lock:
            await self._ready()
            stored = await self._load()
            held = self._token.refresh_token if self._token is not None else None
            if stored is not None and stored.refresh_token != held:
                self._token = stored  # rotated elsewhere: that is fresh enough
                return True
            age = self.token_age()
            if age is not None and age < max_age_seconds:
                return False
            await self._refresh_round(self._report)
            return True

    def token_age(self) -> float | None:
        """Seconds since the refresh token in use was stored; None before it is known."""
        token = self._token
        if token is None or token.stored_at is None:
            return None
        return max(0.0, self._clock() - token.stored_at)

    async def _ready(self) -> None:
        if self._unsaved is not None:
            await self._save_unsaved_rotation()
        if self._token is None:
            self._token = await self._load_or_seed()

    async def _settle(self, rejected: str | None, report: Callable[[KeapCall], None]) -> str:
        await self._ready()
        rounds = 0
        while (access := self._usable_access(rejected)) is None:
            if rounds == MAX_REFRESH_ROUNDS:
                raise KeapTransientError(OPERATION, "the OAuth token kept changing; will retry")
            rounds += 1
            await self._refresh_round(report)
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
        seeded = StoredToken(env_token, None, None, env_hash, self._clock())
        previous = stored.refresh_token if stored is not None else None
        if await self._save(seeded, previous):
            return seeded
        return await self._load_required()  # another replica seeded or rotated first

    async def _refresh_round(self, report: Callable[[KeapCall], None]) -> None:
        """One step toward a usable token: adopt the store's newer token, or rotate ours."""
        current = self._token
        assert current is not None
        stored = await self._load()
        if stored is not None and stored.refresh_token != current.refresh_token:
            self._token = stored  # another replica rotated since we last looked
            return
        # Keap kills the old refresh token as it answers, so a rotation stopped between its
        # answer and our save (a worker stopping, a delivery cancelled) would leave a dead
        # token stored: once asked, the rotation runs to its save even if we are cancelled.
        rotation = asyncio.ensure_future(self._rotate_and_save(current, report))
        try:
            await asyncio.shield(rotation)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await rotation
            raise

    async def _rotate_and_save(
        self, current: StoredToken, report: Callable[[KeapCall], None]
    ) -> None:
        try:
            rotated = await self._request_rotation(current, report)
        except KeapAuthError:
            # Refused: perhaps because another replica (or `relay keap login`) rotated it.
            newer = await self._newer_stored(current)
            if newer is None:
                raise
            self._token = newer  # rotated by another process while we asked
            return
        try:
            saved = await self._save(rotated, current.refresh_token)
        except KeapTransientError:
            # Keap already killed the old token: keep the new one and keep trying to save it.
            self._unsaved = _UnsavedRotation(rotated, current.refresh_token)
            raise
        self._token = rotated if saved else await self._load_required()

    async def _newer_stored(self, current: StoredToken) -> StoredToken | None:
        """The store's token if it differs from ``current``, looking a few times: a replica
        whose refresh won gets Keap's answer around when we get our refusal, and saves it
        only then."""
        for delay in (0.0, *REFUSAL_RECHECK_DELAYS):
            await asyncio.sleep(delay)
            stored = await self._load()
            if stored is not None and stored.refresh_token != current.refresh_token:
                return stored
        return None

    async def _save_unsaved_rotation(self) -> None:
        pending = self._unsaved
        assert pending is not None
        saved = await self._save(pending.token, pending.previous_refresh_token)
        self._unsaved = None
        self._token = pending.token if saved else await self._load_required()

    async def _request_rotation(
        self, current: StoredToken, report: Callable[[KeapCall], None]
    ) -> StoredToken:
        form = {"grant_type": "refresh_token", "refresh_token": current.refresh_token}
        # Refreshes authenticate the client with HTTP Basic (infusionsoft-php, refreshAccessToken).
        return await request_tokens(
            self._http,
            self._token_url,
            form,
            auth=self._client,
            secrets=self.secrets,
            report=report,
            seed_hash=current.seed_hash,
            previous_refresh_token=current.refresh_token,
            clock=self._clock,
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
