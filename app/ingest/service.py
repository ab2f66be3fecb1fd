"""The ingest path: check, read, verify, plan and durably store one webhook request.

Nothing here talks HTTP: the endpoint hands over the request's parts and turns the
result (or a RelayError) into an answer.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote, quote_plus

from app.config.models import RelayConfig, Source
from app.errors import (
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)
from app.ingest.bodies import BodyError, UnsupportedBody, parse_body, parse_query
from app.ingest.signatures import SignatureError, verify_signature
from app.plan.planner import plan_event
from app.store.base import Inserted, NewEvent, Store, StoreUnavailable, UnstorableEvent
from app.store.ids import new_event_id

REDACTED = "[redacted]"
# Headers never stored: signatures, credentials and anything that smells like one.
_SECRET_HEADER = re.compile("signature|hmac|token|secret|auth|cookie|key")


# Not frozen: made on every webhook (see app.store.base.PlannedStep).
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
        self._trusted = [ipaddress.ip_network(p, strict=False) for p in trusted_proxies or []]

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
        if method != "HEAD" and method not in source.methods:
            allowed = ", ".join(source.methods)
            raise MethodNotAllowed(f"source {name!r} accepts {allowed}, not {method}")
        return source

    def sender_address(
        self, headers: Mapping[str, str], client_ip: str | None
    ) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """The peer address, or the client named by X-Forwarded-For when the peer is a
        trusted proxy (the right-most address not itself a trusted proxy)."""
        address = _parse_ip(client_ip)
        if address is None or not self._is_trusted(address):
            return address
        forwarded = [part.strip() for part in headers.get("x-forwarded-for", "").split(",")]
        for hop in reversed([p for p in forwarded if p]):
            hop_address = _parse_ip(hop)
            if hop_address is None:
                return address
            if not self._is_trusted(hop_address):
                return hop_address
        return address

    def _is_trusted(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(address in net for net in self._trusted)

    async def receive(
        self, request: IngestRequest, *, source: Source | None = None
    ) -> IngestResult:
        source = source or self.source_for(
            request.source, request.method, request.headers, request.client_ip
        )
        query = _parse_query(request.query_string)
        if request.method == "GET":
            body: Any = query
            raw = request.query_string.encode()
        else:
            body = _parse_body(request.body, request.headers.get("content-type"))
            raw = request.body
        if _is_woocommerce_ping(source, request.headers, body) or _is_empty_probe(
            source, request, query
        ):
            return IngestResult(inserted=[], split=False, ping=True)
        headers = request.headers
        token_value = None
        if source.verify.scheme == "token" and source.verify.at is not None:
            token_value = source.verify.at.search(
                {"headers": headers, "body": body, "query": query}
            )
        try:
            verify_signature(source.verify, raw_body=raw, headers=headers, token_value=token_value)
        except SignatureError as exc:
            raise Unauthorized(f"webhook not verified: {exc}") from None
        if (
            source.verify.scheme == "token"
            and source.verify.secret
            and _carries(source.verify.secret, raw, request.query_string)
        ):
            try:
                body = _redact(body, source.verify.secret)
                query = _redact(query, source.verify.secret)
            except RecursionError:
                raise BadRequest("the body is nested too deeply") from None
        split = isinstance(body, list)
        bodies = body if split else [body]
        now = time.time()
        stored_headers = _storable_headers(headers)
        events = [
            self._new_event(
                request.source,
                source,
                element,
                stored_headers,
                query,
                None if split else raw,
                now,
            )
            for element in bodies
        ]
        if not events:
            raise BadRequest("the JSON array is empty: there is no event to store")
        if split:
            events = _distinct_dedupe_keys(events)
        try:
            inserted = await self.store.insert_events(events)
        except StoreUnavailable as exc:
            raise ServiceUnavailable(f"the event could not be stored: {exc}") from None
        except UnstorableEvent as exc:
            raise BadRequest(f"the event could not be stored: {exc}") from None
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
        plan = plan_event(self.config, name, event_type, document)
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


def _parse_body(raw: bytes, content_type: str | None) -> Any:
    try:
        return parse_body(raw, content_type)
    except UnsupportedBody as exc:
        raise UnsupportedMediaType(str(exc)) from None
    except BodyError as exc:
        raise BadRequest(str(exc)) from None


def _parse_query(query_string: str) -> dict[str, Any]:
    if not query_string:
        return {}
    try:
        return parse_query(query_string)
    except BodyError as exc:
        raise BadRequest(f"query string: {exc}") from None


def _is_woocommerce_ping(source: Source, headers: Mapping[str, str], body: Any) -> bool:
    """WooCommerce's save-time ping: unsigned form body holding only ``webhook_id``."""
    return (
        source.verify.scheme == "woocommerce"
        and "x-wc-webhook-signature" not in headers
        and isinstance(body, dict)
        and set(body) == {"webhook_id"}
    )


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
    return _SECRET_HEADER.search(name) is not None


def _carries(secret: str, body: bytes, query_string: str) -> bool:
    """Whether the secret is in the body or query as sent (plainly or URL-encoded): when
    it is not (a token in a header), there is nothing to redact and no need to look."""
    return any(raw in body or text in query_string for text, raw in _secret_forms(secret))


@functools.lru_cache(maxsize=256)
def _secret_forms(secret: str) -> tuple[tuple[str, bytes], ...]:
    """The ways a body or query can spell the secret (worked out once per secret)."""
    forms = {
        secret,
        quote_plus(secret),
        quote(secret, safe=""),
        json.dumps(secret)[1:-1],  # as a JSON string holds it (escapes, \uXXXX)
        json.dumps(secret, ensure_ascii=False)[1:-1],
    }
    return tuple((form, form.encode()) for form in forms)


def _redact(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return REDACTED if value == secret else value
    if isinstance(value, dict):
        return {k: _redact(v, secret) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secret) for v in value]
    return value


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


def _parse_ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not value:
        return None
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
