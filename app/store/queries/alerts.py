"""What the alerts read and what they remember having told, across replicas and restarts."""

from __future__ import annotations

from app.domain.problems import DeadEvent
from app.store.database import Conn
from app.store.dialect import Dialect
from app.store.queries.events import (
    route_label,
)


def dead_since(conn: Conn, d: Dialect, since: float, until: float, limit: int) -> list[DeadEvent]:
    """Events that went dead between ``since`` and ``until`` (updated_at, both included),
    oldest first: what the dead-event alerts count (index events_finished)."""
    rows = conn.execute(
        d.sql(
            "SELECT source, routes, last_error, updated_at FROM events WHERE status = 'dead' "
            "AND updated_at >= ? AND updated_at <= ? ORDER BY updated_at LIMIT ?"
        ),
        (since, until, limit),
    ).fetchall()
    return [
        DeadEvent(r["source"], route_label(r["routes"]), r["last_error"] or "", r["updated_at"])
        for r in rows
    ]


def load_alert_state(conn: Conn, d: Dialect, prefix: str) -> dict[str, tuple[float, float]]:
    """{key: (value, sent_at)} for the alert state keys starting with ``prefix``."""
    rows = conn.execute(
        d.sql("SELECT key, value, sent_at FROM alert_state WHERE key LIKE ?"), (prefix + "%",)
    ).fetchall()
    return {r["key"]: (r["value"], r["sent_at"]) for r in rows}


def forget_alert_state(conn: Conn, d: Dialect, prefix: str, sent_before: float) -> int:
    """Delete the alert state keys starting with ``prefix`` last sent before a time."""
    cursor = conn.execute(
        d.sql("DELETE FROM alert_state WHERE key LIKE ? AND sent_at < ?"),
        (prefix + "%", sent_before),
    )
    return int(cursor.rowcount)


def advance_alert_state(
    conn: Conn, d: Dialect, key: str, value: float, now: float, expected: float | None
) -> bool:
    """Set an alert's state to ``value`` if it is still ``expected`` (a missing key counts
    as 0), or, without ``expected``, if it is below ``value``. True: this caller changed
    it, and so is the one (of every replica) to send the alert."""
    conn.execute(
        d.sql(
            "INSERT INTO alert_state (key, value, sent_at) VALUES (?, 0, 0) ON CONFLICT DO NOTHING"
        ),
        (key,),
    )
    guard, bound = ("value = ?", expected) if expected is not None else ("value < ?", value)
    cursor = conn.execute(
        d.sql(f"UPDATE alert_state SET value = ?, sent_at = ? WHERE key = ? AND {guard}"),
        (value, now, key, bound),
    )
    return bool(cursor.rowcount == 1)
