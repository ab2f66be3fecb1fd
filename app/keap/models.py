"""The plain types of the Keap client: credentials, contact fields, call reports, and the
protocols of the two collaborators the lead provides (the shared rate gate and the token store).

``app.keap.client`` re-exports all of them; import them from there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

CredentialMode = Literal["key", "oauth", "none"]


@dataclass(frozen=True)
class KeapCredentials:
    # repr=False: these objects end up in logs and tracebacks.
    api_key: str | None = field(default=None, repr=False)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)  # only SEEDS the token store

    @property
    def mode(self) -> CredentialMode:
        """A key wins over OAuth when both are set; OAuth needs the client id and secret."""
        if self.api_key:
            return "key"
        if self.client_id and self.client_secret:
            return "oauth"
        return "none"

    def secrets(self) -> list[str]:
        return [s for s in (self.api_key, self.client_secret, self.refresh_token) if s]


@dataclass(frozen=True)
class ContactFields:
    email: str
    given_name: str | None = None
    family_name: str | None = None
    phone: str | None = None
    company: str | None = None  # a name: resolved to the company's id before the upsert
    company_id: int | None = None  # a Keap company id, used as it is (wins over the name)
    opt_in_reason: str | None = None
    custom_fields: Mapping[int, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class KeapCall:
    """One HTTP exchange with Keap (token refreshes included, as operation "oauth.refresh")."""

    operation: str
    method: str
    path: str  # the URL path only: no host, no query
    status_code: int | None  # None when no response arrived
    duration: float  # seconds
    error: str | None  # the classified error's detail, None on success
    throttle: Mapping[str, str]  # the response's x-keap-* headers


BeforeSend = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class CallContext:
    """One step's view of its Keap calls, passed to each client method it makes: every call
    is recorded in ``calls`` (the step's history), and ``before_send``, if set, runs once,
    after the rate gate lets the step's first call through and just before it is sent (the
    worker durably marks a call that must not run twice as sending)."""

    before_send: BeforeSend | None = None
    calls: list[KeapCall] = field(default_factory=list)
    urgent: bool = False  # other events wait on these calls (a batch): CallGate.acquire

    def record(self, call: KeapCall) -> None:
        self.calls.append(call)

    def take_before_send(self) -> BeforeSend | None:
        """The hook, once: later calls of the step are not marked again."""
        hook, self.before_send = self.before_send, None
        return hook


class CallGate(Protocol):
    async def acquire(self, before_send: BeforeSend | None = None, *, urgent: bool = False) -> None:
        """Return when a call may be sent, having run ``before_send`` just before;
        ``urgent``: ahead of this process's other waiting calls."""
        ...

    def observe(self, headers: Mapping[str, str], status: int) -> None: ...


@dataclass(frozen=True)
class StoredToken:
    refresh_token: str = field(repr=False)
    access_token: str | None = field(repr=False)
    access_expires_at: float | None  # epoch seconds
    seed_hash: str | None  # sha256 hex of the environment refresh token that seeded this row
    # When this refresh token was stored (epoch seconds): Keap kills a refresh token left
    # unused for 45 days, so its age says how close that is. Set by the store on load.
    stored_at: float | None = None


class TokenStore(Protocol):
    async def load_oauth_token(self) -> StoredToken | None: ...

    async def save_oauth_token(
        self, token: StoredToken, *, previous_refresh_token: str | None
    ) -> bool:
        """Compare-and-swap: write only if the stored refresh token equals
        ``previous_refresh_token`` (None: only if no row exists); False when someone else
        changed it first."""
        ...
