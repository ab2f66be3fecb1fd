"""``relay sign SOURCE FILE``: every header a sender would attach to FILE, and (on stderr)
what the relay would do with the request — which routes take it, or why it is ignored."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from app.admin.cli import terminal_text
from app.config.models import RelayConfig, Source
from app.ingest.bodies import BodyError, parse_body
from app.ingest.schemes import sign_request
from app.ingest.sender_headers import reads_headers, sender_headers
from app.plan.planner import plan_event
from app.settings import Settings


def print_signed_headers(settings: Settings, args: argparse.Namespace) -> int:
    from app.main import load_relay_config

    config, _ = load_relay_config(settings)
    source = config.sources.get(args.source)
    if source is None:
        known = ", ".join(sorted(config.sources)) or "none"
        print(f"no source named {args.source!r} (sources: {known})", file=sys.stderr)
        return 2
    try:
        body = args.file.read_bytes()
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    event_type = None
    if reads_headers(source):
        event_type = args.event or _first_event(config, args.source)
        if event_type is None:
            print(
                f"source {args.source!r} reads the event type from a header: name it with "
                "--event (e.g. --event orders/paid)",
                file=sys.stderr,
            )
            return 2
    elif args.event:
        print(
            f"# --event ignored: {args.source} reads the event type from "
            f"{source.event_type_selector.expression}",
            file=sys.stderr,
        )
    now = time.time()
    headers = {**sender_headers(source, event_type, now), **sign_request(source.verify, body)}
    _explain_scheme(source)
    outcome = _outcome(config, args.source, source, headers, body)
    print(f"# {terminal_text(outcome)}", file=sys.stderr)  # the body's event type, escaped
    for name, value in headers.items():
        print(f"{name}: {value}")
    return 0


def _first_event(config: RelayConfig, source: str) -> str | None:
    """The first route's event for ``source`` that is a plain name (not a pattern)."""
    for route in config.routes:
        if route.source == source and not any(char in route.event for char in "*?["):
            return route.event
    return None


def _explain_scheme(source: Source) -> None:
    scheme = source.verify.scheme
    if scheme == "token" and source.verify.at is not None:
        print(
            f"# scheme token: put the shared secret at {source.verify.at.expression}",
            file=sys.stderr,
        )
    elif scheme == "none":
        print(
            "# scheme none: nothing to sign; the sender's address must be allowed", file=sys.stderr
        )


def _outcome(
    config: RelayConfig, name: str, source: Source, headers: dict[str, str], raw: bytes
) -> str:
    """What the relay would do with the request: the routes that take it, or why none."""
    try:
        body: Any = parse_body(raw, None)
    except BodyError as exc:
        return f"the relay would refuse this body: {exc.detail}"
    lowered = {key.lower(): value for key, value in headers.items()}
    elements = body if isinstance(body, list) else [body]
    lines = []
    for element in elements:
        document = {"headers": lowered, "body": element, "query": {}}
        event_type = source.event_type_selector.search(document)
        event = str(event_type) if event_type is not None else None
        plan = plan_event(config, name, event, document, received_at=time.time())
        if plan.status == "ignored":
            lines.append(f"event {event!r}: stored as ignored: {plan.error}")
        elif plan.status == "dead":
            lines.append(f"event {event!r}: stored as dead: {plan.error}")
        else:
            lines.append(f"event {event!r}: routed by {', '.join(plan.routes)}")
    return "; ".join(lines)
