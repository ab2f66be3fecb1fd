"""A time without an offset is UTC, wherever the relay reads one: from an operator, a
sender (order dates, ClickFunnels' signed timestamp) or Keap (throttle headers).

The admin API and ``relay replay --since`` both read operator times with
``parse_operator_time``, so the same text means the same instant whichever is used,
whatever the machine's local zone.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(moment: datetime) -> datetime:
    """``moment`` itself when it carries an offset; read as UTC when it does not."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_operator_time(text: str) -> datetime:
    """An ISO-8601 time (``Z`` or an offset, else UTC); ValueError when it is not one."""
    return as_utc(datetime.fromisoformat(text.strip()))
