"""The ingest path: check, read, verify, plan and durably store one webhook request.

Nothing here talks HTTP: the endpoint hands over the request's parts and turns the
result (or a RelayError) into an answer.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from app.api.proxies import TrustedProxies
from app.config.models import RelayConfig, Source, VerifySpec
from app.domain.events import Inserted, NewEvent
from app.errors import (
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from app.ingest.bodies import BodyError, BodyTooLarge, UnsupportedBody, parse_body, parse_query
from app.ingest.redaction import redactor_for
from app.ingest.schemes import SignatureError
from app.ingest.signatures import verify_signature
from app.observability.tracing import LINK_HEADER, IngestTrace
from app.plan.planner import plan_event
from app.store.base import Store, StoreUnavailable, UnstorableEvent
from app.store.ids import new_event_id

# Headers never stored: signatures, credentials and anything that smells like one.
_SECRET_HEADER = re.compile("signature|hmac|token|secret|auth|cookie|key|pass|session|credential")
# One request's JSON array is split into at most this many events.
MAX_EVENTS_PER_REQUEST = 100
# Bodies at least this large are parsed (and redacted) in a thread, off the event loop.
OFF_LOOP_BYTES = 64 * 1024
_PING_BYTES = 1024


# Not frozen: made on every webhook (see app.domain.events.PlannedStep).
@dataclass(slots=True)
class IngestRequest:
    source: str
    method: str
    headers: dict[str, str]  # lower-case names, as the ASGI layer decoded them
    query_string: str
    body: bytes
    client_ip: str | None


@dataclass(slots=True)
class IngestResult:
    inserted: list[Inserted]
    split: bool  # the body was a JSON array, one event per element
    ping: bool = False
    statuses: tuple[str, ...] = ()  # the stored status of each inserted event
    routes: tuple[list[str], ...] = ()  # the routes each inserted event matched
    reasons: tuple[str | None, ...] = ()  # why each one is ignored (or dead) at once


class IngestService:
    def __init__(
        self,
        config: RelayConfig,
        store: Store,
        trusted_proxies: list[str] | None = None,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.on_stored = on_stored
        self.proxies = TrustedProxies(trusted_proxies)
        self._large_bodies = ThreadPoolExecutor(1, thread_name_prefix="relay-large-bodies")

    def source_for(
        self, name: str, method: str, headers: Mapping[str, str], client_ip: str | None
    ) -> Source:
        """The source, once the method and the sender's address are allowed."""
        source = self.config.sources.get(name)
        if source is None:
            raise NotFound(f"no source named {name!r} is configured")
        if source.allow_ips:
            address = self.sender_address(headers, client_ip)
            if address is None or not any(address in net for net in source.allow_ips):
                raise Forbidden(f"address {address} is not allowed to post to {name!r}")
        if method not in source.allowed_methods:
            raise MethodNotAllowed(
                f"source {name!r} accepts {source.allow_header}, not {method}",
                allow=source.allow_header,
            )
        return source

    async def _off_loop_if_large(self, raw: bytes, work: Callable[..., Any], *args: Any) -> Any:
        """``work(*args)`` here for a small body; for a large one, in the one thread kept
        for large bodies. The event loop then keeps answering (the GIL is handed back
        every millisecond) and, large bodies taking turns in one thread, it competes for
        the GIL with one of them, however many arrive at once: small webhooks never wait
        behind them."""
        if len(raw) < OFF_LOOP_BYTES:
            return work(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._large_bodies, functools.partial(work, *args))

    def close(self) -> None:
        self._large_bodies.shutdown(wait=False, cancel_futures=True)

    def sender_address(
        self, headers: Mapping[str, str], client_ip: str | None
    ) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The client's address (X-Forwarded-For believed only from a trusted proxy)."""
        return self.proxies.client_address(headers, client_ip)

    async def receive(
        self,
        request: IngestRequest,
        *,
        source: Source | None = None,
        trace: IngestTrace | None = None,
    ) -> IngestResult:
        """Verify, parse, plan and store one request; ``trace`` (tracing on) is told
        when each phase ends, and its context is stored with the events."""
        source = source or self.source_for(
            request.source, request.method, request.headers, request.client_ip
        )
        query = _parse_query(request.query_string)
        if _is_empty_probe(source, request, query) or _is_woocommerce_ping(source, request):
            return IngestResult(inserted=[], split=False, ping=True)
        body, raw = await self._verified_body(source, request, query, trace)
        headers = _storable_headers(request.headers)
        digested: bytes | None = raw
        if source.verify.scheme == "token" and source.verify.secret:
            redactor = redactor_for(source.verify.secret)
            headers = redactor.headers(headers)
            if redactor.may_be_in(request.query_string):
                query = redactor.value(query)
            if request.method == "GET":
                body = query
            if redactor.may_be_in(raw):
                if request.method != "GET":
                    body = await self._off_loop_if_large(raw, redactor.value, body)
                digested = None  # the dedupe digest is of the redacted body, not the secret's
        if trace is not None:
            headers[LINK_HEADER] = trace.traceparent
        return await self._store(request.source, source, body, headers, query, digested, trace)

    async def _verified_body(
        self,
        source: Source,
        request: IngestRequest,
        query: dict[str, Any],
        trace: IngestTrace | None,
    ) -> tuple[Any, bytes]:
        """The parsed body (the query, for a GET) and the raw bytes it came from, verified.

        Whoever signs the raw body (or sends the token outside it) is verified before the
        body is parsed: a forged request costs one HMAC, never a parse."""
        body: Any = None
        if request.method == "GET":
            body, raw = query, request.query_string.encode()
        else:
            raw = request.body
        body_first = source.verify.scheme == "token" and _reads_body(source.verify)
        if not body_first:
            _verify(source, raw, request.headers, query, None)
            if trace is not None:
                trace.mark("verify")
        if request.method != "GET":
            body = await self._off_loop_if_large(raw, _parse_body, raw, request.headers)
            if trace is not None:
                trace.mark("parse")
        if body_first:
            _verify(source, raw, request.headers, query, body)
            if trace is not None:
                trace.mark("verify")
        return body, raw

    async def _store(
        self,
        name: str,
        source: Source,
        body: Any,
        headers: dict[str, str],
        query: dict[str, Any],
        raw: bytes | None,
        trace: IngestTrace | None,
    ) -> IngestResult:
        split = isinstance(body, list)
        bodies = body if split else [body]
        if not bodies:
            raise BadRequest("the JSON array is empty: there is no event to store")
        if len(bodies) > MAX_EVENTS_PER_REQUEST:
            raise PayloadTooLarge(
                f"the JSON array holds {len(bodies)} events; at most "
                f"{MAX_EVENTS_PER_REQUEST} are taken in one request"
            )
        now = time.time()
        events = [
            self._new_event(name, source, element, headers, query, None if split else raw, now)
            for element in bodies
        ]
        if split:
            events = _distinct_dedupe_keys(events)
        if trace is not None:
            trace.mark("plan")
        try:
            inserted = await self.store.insert_events(events)
        except StoreUnavailable as exc:
            raise ServiceUnavailable(f"the event could not be stored: {exc}") from None
        except UnstorableEvent as exc:
            raise BadRequest(f"the event could not be stored: {exc}") from None
        if trace is not None:
            trace.mark("store")
        if self.on_stored is not None and any(e.status == "pending" for e in events):
            self.on_stored()
        return IngestResult(
            inserted=inserted,
            split=split,
            statuses=tuple(e.status for e in events),
            routes=tuple(e.routes for e in events),
            reasons=tuple(e.last_error for e in events),
        )

    def _new_event(
        self,
        name: str,
        source: Source,
        body: Any,
        headers: dict[str, str],
        query: dict[str, Any],
        raw: bytes | None,
        now: float,
    ) -> NewEvent:
        """One event; without an id to dedupe on, the digest of ``raw`` (the request as
        sent) or, for an element of an array (``raw`` None), of the element itself."""
        document = {"headers": headers, "body": body, "query": query}
        event_type = _as_text(source.event_type_selector.search(document))
        external_id = None
        if (selector := source.event_id_selector) is not None:
            external_id = _as_text(selector.search(document))
        plan = plan_event(self.config, name, event_type, document, received_at=now)
        return NewEvent(
            id=new_event_id(now),
            source=name,
            event_type=event_type,
            external_id=external_id,
            dedupe_key=f"id:{external_id}" if external_id else _content_key(body, raw),
            status=plan.status,
            received_at=now,
            payload=body,
            headers=headers,
            routes=plan.routes,
            contact_email=plan.contact_email,
            last_error=plan.error,
            steps=plan.steps,
        )


def _distinct_dedupe_keys(events: list[NewEvent]) -> list[NewEvent]:
    """The elements of one array are events of their own: where they share a dedupe key
    (an id read from a header, say), their position in the array tells them apart — and
    a redelivery of the same array still dedupes element by element."""
    counts = Counter(e.dedupe_key for e in events)
    return [
        replace(e, dedupe_key=f"{e.dedupe_key}/{index}") if counts[e.dedupe_key] > 1 else e
        for index, e in enumerate(events)
    ]


def _verify(
    source: Source, raw: bytes, headers: Mapping[str, str], query: dict[str, Any], body: Any
) -> None:
    token_value = None
    if source.verify.scheme == "token" and source.verify.at is not None:
        document = {"headers": headers, "body": {} if body is None else body, "query": query}
        token_value = source.verify.at.search(document)
    try:
        verify_signature(source.verify, raw_body=raw, headers=headers, token_value=token_value)
    except SignatureError as exc:
        raise Unauthorized(f"webhook not verified: {exc}") from None


def _reads_body(verify: VerifySpec) -> bool:
    """Whether the token is looked for in the body (which must then be parsed first)."""
    return verify.at is not None and "body" in verify.at.expression


def _parse_body(raw: bytes, headers: Mapping[str, str]) -> Any:
    try:
        return parse_body(raw, headers.get("content-type"))
    except UnsupportedBody as exc:
        raise UnsupportedMediaType(str(exc)) from None
    except BodyTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except BodyError as exc:
        raise BadRequest(str(exc)) from None


def _parse_query(query_string: str) -> dict[str, Any]:
    if not query_string:
        return {}
    try:
        return parse_query(query_string)
    except BodyTooLarge as exc:
        raise PayloadTooLarge(f"query string: {exc}") from None
    except BodyError as exc:
        raise BadRequest(f"query string: {exc}") from None


def _is_woocommerce_ping(source: Source, request: IngestRequest) -> bool:
    """WooCommerce's save-time ping: an unsigned, small form body holding only
    ``webhook_id`` (a larger unsigned body is not parsed: it fails verification)."""
    if (
        source.verify.scheme != "woocommerce"
        or "x-wc-webhook-signature" in request.headers
        or len(request.body) > _PING_BYTES
    ):
        return False
    try:
        body = parse_body(request.body, request.headers.get("content-type"))
    except BodyError:
        return False
    return isinstance(body, dict) and set(body) == {"webhook_id"}


def _is_empty_probe(source: Source, request: IngestRequest, query: dict[str, Any]) -> bool:
    """A POST with no body and no event type: a sender checking the URL before saving it
    (ThriveCart pings with HEAD, then POST). It carries no event, so nothing is stored,
    and it may not carry the token either."""
    if request.method != "POST" or request.body.strip():
        return False
    document = {"headers": dict(request.headers), "body": {}, "query": query}
    return source.event_type_selector.search(document) in (None, "")


def _storable_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if not _is_secret_header(name)}


@functools.lru_cache(maxsize=1024)  # senders repeat the same few header names
def _is_secret_header(name: str) -> bool:
    # LINK_HEADER is the relay's own: a sender's would forge the trace link.
    return name == LINK_HEADER or _SECRET_HEADER.search(name) is not None


def _as_text(value: Any) -> str | None:
    if value is None or value == "" or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).replace("\x00", "")  # PostgreSQL text cannot hold NUL


def _content_key(body: Any, raw: bytes | None) -> str:
    """The dedupe key of an event without an id: worked out only for those."""
    if raw is None:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        raw = canonical.encode()
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"
