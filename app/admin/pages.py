"""Rendering the dashboard: the Jinja2 templates shipped in this package, always
autoescaped, and the headers every page carries (no framing, no scripts, no caching)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.responses import HTMLResponse

from app.admin.auth import admin_path

_TEMPLATES = Path(__file__).parent / "templates"

# The pages need no script at all; forms post only back to the relay.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(moment: datetime | None, now: float | None = None) -> str:
    """'5 min ago' or 'in 3 h': how far ``moment`` is from now, roughly."""
    if moment is None:
        return ""
    seconds = moment.timestamp() - (time.time() if now is None else now)
    size = abs(seconds)
    for unit, length in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= length:
            amount = f"{int(size // length)} {unit}"
            break
    else:
        amount = f"{int(size)} s"
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


# At most this much of a payload is shown on the event page (the rest is downloaded), and
# of each step's parameters: the page stays small whatever was posted.
PAYLOAD_CHARS = 100_000
PARAMS_CHARS = 2_000
_PRETTY = json.JSONEncoder(indent=2, ensure_ascii=False, default=str)
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "), default=str)


def bounded_json(encoder: json.JSONEncoder, value: Any, limit: int) -> tuple[str, bool]:
    """``value`` encoded up to ``limit`` characters, and whether it was cut: the encoder
    runs lazily, so a large value costs only the part shown."""
    parts: list[str] = []
    size = 0
    for part in encoder.iterencode(value):
        parts.append(part)
        size += len(part)
        if size > limit:
            return "".join(parts)[:limit] + "\n…", True
    return "".join(parts), False


def pretty_json(value: Any) -> tuple[str, bool]:
    return bounded_json(_PRETTY, value, PAYLOAD_CHARS)


def compact_json(value: Any) -> str:
    return bounded_json(_COMPACT, value, PARAMS_CHARS)[0]


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, ago=ago, pretty_json=pretty_json, compact_json=compact_json)
    return env


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    html = (
        environment().get_template(template).render(base=admin_path(request, "/admin"), **context)
    )
    return HTMLResponse(html, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})})
