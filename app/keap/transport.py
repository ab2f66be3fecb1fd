"""How every Keap call is made: the credential (an API key, or an OAuth bearer refreshed
once when Keap refuses it), the shared rate gate, the report of each exchange (to the
observer and to the step's ``CallContext``), and the classification of the answer."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import httpx

from app.keap.auth import OAuthSession
from app.keap.errors import KeapAuthError
from app.keap.exchange import Reply, traced
from app.keap.models import CallContext, CallGate, KeapCall, KeapCredentials, TokenStore
from app.keap.replies import read_after_sunset, read_before_sunset
from app.keap.xmlrpc import encode_call
from app.observability.secrets import REDACTED

logger = logging.getLogger("app.keap.client")

T = TypeVar("T")
ReplyReader = Callable[[str, Reply], T]

XMLRPC_PATH = "/xmlrpc/v1"
XMLRPC_KEY_PLACEHOLDER = "relay"  # Keap reads the credential from the request's headers


def utc_today() -> date:
    return datetime.now(UTC).date()


class KeapTransport:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        token_url: str,
        credentials: KeapCredentials,
        token_store: TokenStore | None = None,
        gate: CallGate | None = None,
        observer: Callable[[KeapCall], None] | None = None,
        xmlrpc_sunset: date | None = None,
        today: Callable[[], date] = utc_today,
    ) -> None:
        """``xmlrpc_sunset``: the day Keap retires XML-RPC (RELAY_KEAP_XMLRPC_SUNSET); once
        ``today()`` is past it, a non-XML-RPC answer to an XML-RPC call is permanent."""
        self._http = http
        self._xmlrpc_sunset = xmlrpc_sunset
        self._today = today
        self._base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._gate = gate
        self._observer = observer
        self._oauth: OAuthSession | None = None
        if credentials.mode == "oauth":
            if token_store is None:
                # Refreshing kills the old refresh token: an unpersisted rotation is lost.
                raise ValueError("OAuth credentials need a token store")
            self._oauth = OAuthSession(
                http,
                token_url=token_url,
                client_id=credentials.client_id or "",
                client_secret=credentials.client_secret or "",
                env_refresh_token=credentials.refresh_token,
                store=token_store,
                report=self._report,
            )

    @property
    def oauth(self) -> OAuthSession | None:
        """The OAuth token keeper (None with an API key): proactive refresh, token age."""
        return self._oauth

    async def xmlrpc(
        self,
        operation: str,
        read: ReplyReader[T],
        method_name: str,
        *params: Any,
        ctx: CallContext | None = None,
    ) -> T:
        # The credential travels in a header (X-Keap-API-Key or the bearer); the key
        # parameter is a placeholder, so the secret never sits in a request body.
        body = encode_call(method_name, (XMLRPC_KEY_PLACEHOLDER, *params))
        if self._xmlrpc_sunset is not None and self._today() > self._xmlrpc_sunset:
            read = functools.partial(read_after_sunset, read=read, sunset=self._xmlrpc_sunset)
        else:
            read = functools.partial(read_before_sunset, read=read)
        return await self.call(operation, "POST", XMLRPC_PATH, read, content=body, ctx=ctx)

    async def call(
        self,
        operation: str,
        method: str,
        path: str,
        read: ReplyReader[T],
        *,
        json_body: Any = None,
        content: bytes | None = None,
        ctx: CallContext | None = None,
    ) -> T:
        is_xmlrpc = content is not None
        headers = {"Content-Type": "text/xml"} if is_xmlrpc else {"Accept": "application/json"}
        report = self._reporter(ctx)
        bearer = await self._authorise(operation, headers, report)
        body = _Body(json_body, content)
        try:
            return await self._exchange(operation, method, path, read, headers, body, ctx)
        except KeapAuthError as err:
            if self._oauth is None or bearer is None or not err.token_rejected:
                raise
            bearer = await self._oauth.replace_rejected(bearer, report)
        headers["Authorization"] = f"Bearer {bearer}"
        return await self._exchange(operation, method, path, read, headers, body, ctx)

    async def _authorise(
        self, operation: str, headers: dict[str, str], report: Callable[[KeapCall], None]
    ) -> str | None:
        """Adds the credential header; the bearer token used, if any."""
        if self._credentials.mode == "key":
            headers["X-Keap-API-Key"] = self._credentials.api_key or ""
            return None
        if self._oauth is not None:
            bearer = await self._oauth.access_token(report)
            headers["Authorization"] = f"Bearer {bearer}"
            return bearer
        raise KeapAuthError(operation, "no Keap credentials are configured")

    async def _exchange(
        self,
        operation: str,
        method: str,
        path: str,
        read: ReplyReader[T],
        headers: dict[str, str],
        body: _Body,
        ctx: CallContext | None,
    ) -> T:
        url = self._base_url + path
        before_send = ctx.take_before_send() if ctx is not None else None
        if self._gate is not None:
            await self._gate.acquire(before_send, urgent=ctx is not None and ctx.urgent)
        elif before_send is not None:
            await before_send()
        async with traced(operation, method, url, self._secrets, self._reporter(ctx)) as call:
            reply = await call.send(
                self._http, method, url, headers=headers, json=body.json, content=body.content
            )
            self._observe_gate(reply)
            return read(operation, reply.scrubbed(self._secrets(), REDACTED.encode()))

    def _secrets(self) -> list[str]:
        oauth_secrets = self._oauth.secrets() if self._oauth is not None else []
        return self._credentials.secrets() + oauth_secrets

    def _observe_gate(self, reply: Reply) -> None:
        if self._gate is None:
            return
        try:
            self._gate.observe(reply.headers, reply.status)
        except Exception:  # a limiter bug must not turn a call Keap executed into a failure
            logger.exception("the call gate failed to observe a Keap response")

    def _reporter(self, ctx: CallContext | None) -> Callable[[KeapCall], None]:
        """Where a call is reported: the observer, and the step's history when one is given."""
        if ctx is None:
            return self._report

        def report(call: KeapCall) -> None:
            ctx.record(call)
            self._report(call)

        return report

    def _report(self, call: KeapCall) -> None:
        if self._observer is None:
            return
        try:
            self._observer(call)
        except Exception:  # metrics must not turn a call Keap executed into a failure
            logger.exception("the Keap call observer failed")


@dataclass(frozen=True)
class _Body:
    """A request's body: JSON (REST) or bytes (XML-RPC)."""

    json: Any = None
    content: bytes | None = None
