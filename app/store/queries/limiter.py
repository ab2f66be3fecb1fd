"""The rate limiter every replica shares: reserved calls and the pause after a 429."""

from __future__ import annotations

from app.domain.quota import QUOTA_RESET_MARGIN, UTC_DAY_WINDOW, utc_day_start
from app.store.database import Conn
from app.store.dialect import Dialect


def reserve_call(conn: Conn, d: Dialect, now: float, ceilings: list[tuple[int, float]]) -> float:
    """Reserve one call if every (limit, window) ceiling allows it; else the wait in seconds.

    A ceiling of ``limit`` calls in any sliding ``window`` is full when that many calls
    were made within the last ``window`` seconds; the next slot opens when the oldest of
    the last ``limit`` calls leaves the window. A UTC_DAY_WINDOW ceiling counts the
    calls since 00:00 UTC and, once full, opens at the next 00:00 UTC (Keap's reset).
    """
    if d.limiter_lock is not None:
        conn.execute(d.limiter_lock)  # one limiter for all replicas
    row = conn.execute("SELECT not_before FROM limiter_state WHERE id = 1").fetchone()
    wait = max(0.0, float(row["not_before"]) - now)
    for limit, window in ceilings:
        day = window == UTC_DAY_WINDOW
        since = utc_day_start(now) if day else now - window
        oldest = conn.execute(
            d.sql("SELECT at FROM rate_calls WHERE at > ? ORDER BY at DESC LIMIT 1 OFFSET ?"),
            (since, limit - 1),
        ).fetchone()
        if oldest is None:
            continue
        if day:  # the day's quota is spent: nothing until it resets
            wait = max(wait, since + UTC_DAY_WINDOW + QUOTA_RESET_MARGIN - now)
        else:
            wait = max(wait, float(oldest["at"]) + window - now)
    if wait > 0:
        return wait
    conn.execute(d.sql("INSERT INTO rate_calls (at) VALUES (?)"), (now,))
    longest = max(window for _, window in ceilings)
    if int(now * 1000) % 97 == 0:  # prune now and then, not on every call
        conn.execute(d.sql("DELETE FROM rate_calls WHERE at < ?"), (now - longest - 1,))
    return 0.0


def calls_since(conn: Conn, d: Dialect, moments: list[float]) -> list[int]:
    """How many calls were let through since each of ``moments`` (the quota budget)."""
    return [
        int(
            conn.execute(
                d.sql("SELECT COUNT(*) AS n FROM rate_calls WHERE at > ?"), (moment,)
            ).fetchone()["n"]
        )
        for moment in moments
    ]


def set_not_before(conn: Conn, d: Dialect, until: float) -> None:
    conn.execute(
        d.sql("UPDATE limiter_state SET not_before = ? WHERE id = 1 AND not_before < ?"),
        (until, until),
    )
