"""``relay events``: recent events as a table in the terminal, newest first; and
``relay replay``, which re-queues them.

It reads the same database as the dashboard. Contact emails are masked the way the
logs mask them, unless RELAY_LOG_PII is true: terminal output ends up in tickets and chats.
Everything shown came from webhooks, so every cell is printed with its control and
formatting characters escaped (``terminal_text``): an event type holding an escape
sequence cannot recolour, retitle or rewrite the operator's terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime

from app.domain.events import EventFilter, EventRecord
from app.errors import BadRequest
from app.observability.logging import mask_email
from app.settings import Settings
from app.store.sqlite_connect import sqlite_path

ERROR_WIDTH = 60
COLUMNS = ("RECEIVED (UTC)", "ID", "SOURCE", "TYPE", "CONTACT", "STATUS", "STEPS", "LAST ERROR")


def print_events(settings: Settings, args: argparse.Namespace) -> int:
    """Print the events matching ``--status/--source/--email``, at most ``--limit``.
    Exit 0, or 2 (with the reason on stderr) when the database cannot be read."""
    if args.limit < 1:
        print("--limit must be at least 1", file=sys.stderr)
        return 2
    problem = missing_database(settings.database_url)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    email = (args.email or "").strip() or None
    flt = EventFilter(status=args.status, source=args.source, email=email)
    try:
        records = asyncio.run(_load(settings, flt, args.limit + 1))
    except Exception as exc:  # any database failure is the operator's to fix, not a traceback
        reason = terminal_text(_reason(exc))
        print(f"cannot read events from RELAY_DATABASE_URL: {reason}", file=sys.stderr)
        return 2
    shown = records[: args.limit]
    if not shown:
        filtered = args.status or args.source or args.email
        print("no events match these filters" if filtered else "no events yet")
        return 0
    print(format_table([event_row(record, pii=settings.log_pii) for record in shown]))
    if len(records) > args.limit:
        print(f"\n(the {args.limit} newest shown; --limit N shows more)")
    return 0


def event_row(record: EventRecord, *, pii: bool) -> tuple[str, ...]:
    done = sum(1 for step in record.steps if step.status == "done")
    received = datetime.fromtimestamp(record.received_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
    return (
        received,
        terminal_text(record.id),
        terminal_text(record.source),
        terminal_text(record.event_type or "-"),
        terminal_text(_contact(record.contact_email, pii=pii)),
        record.status,
        f"{done}/{len(record.steps)}" if record.steps else "-",
        truncate(terminal_text(" ".join((record.last_error or "").split())), ERROR_WIDTH),
    )


def terminal_text(text: str) -> str:
    """``text`` with control and formatting characters (escape sequences, newlines, bidi
    overrides, zero-width characters) spelled as ``\\x1b`` / ``\\u202e``."""
    if text.isprintable():
        return text
    return "".join(_escaped(c) if unicodedata.category(c) in _HIDDEN else c for c in text)


_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escaped(char: str) -> str:
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def format_table(rows: Sequence[tuple[str, ...]]) -> str:
    """Columns padded to their widest cell; the last column is left ragged."""
    table = [COLUMNS, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS) - 1)]
    lines = []
    for row in table:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


def truncate(text: str, width: int) -> str:
    """One line of at most ``width`` characters, ending in … when cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _contact(email: str | None, *, pii: bool) -> str:
    if email is None:
        return "-"
    return email if pii else mask_email(email) or "-"


async def _load(settings: Settings, flt: EventFilter, limit: int) -> list[EventRecord]:
    from app.bootstrap import bootstrap  # not at import: `relay --help` stays quick

    async with bootstrap(settings) as opened:
        return await opened.store.list_events(flt, limit, None)


def missing_database(url: str) -> str | None:
    """Why ``url`` is not a database to read, or None. Opening a SQLite file creates it:
    a mistyped path would show an empty relay instead of saying so."""
    if not url.startswith("sqlite:"):
        return None
    try:
        path = sqlite_path(url)
    except ValueError as exc:
        return f"RELAY_DATABASE_URL: {exc}"
    if not path.exists():
        return f"no database at {path} (RELAY_DATABASE_URL): has the relay run here yet?"
    return None


def _reason(exc: Exception) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return truncate(text, 200)


def replay_events(settings: Settings, args: argparse.Namespace) -> int:
    """``relay replay``: re-queue the matching events; 2 on a bad argument."""
    from app.admin.service import ReplayOptions, refuse_ignored_without_replan, replay_matching
    from app.bootstrap import bootstrap
    from app.domain.times import parse_operator_time
    from app.main import load_relay_config

    since = None
    if args.since:
        try:
            since = parse_operator_time(args.since).timestamp()
        except ValueError:
            print(f"--since: {args.since!r} is not an ISO-8601 time", file=sys.stderr)
            return 2
    if (problem := missing_database(settings.database_url)) is not None:
        print(problem, file=sys.stderr)
        return 2
    status = args.status or (None if args.dry_run_steps else "dead")
    options = ReplayOptions(
        from_start=args.from_start,
        dry_run_steps=args.dry_run_steps,
        replan=load_relay_config(settings)[0] if args.replan else None,
    )
    try:
        refuse_ignored_without_replan(status, options)
    except BadRequest as exc:
        print(exc.detail, file=sys.stderr)
        return 2
    if args.dry_run_steps and settings.is_dry_run:
        print(
            "warning: the relay is still in dry-run (no credentials, or RELAY_DRY_RUN=true): "
            "these steps will only be recorded again",
            file=sys.stderr,
        )

    async def run() -> int:
        async with bootstrap(settings) as opened:
            return await replay_matching(opened.store, status, args.source, since, options)

    count = asyncio.run(run())
    print(f"requeued {count} event{'s' if count != 1 else ''}")
    return 0
