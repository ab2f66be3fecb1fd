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
    calls since 00:00 UTC (``rate_days``, one counter a day, so the check costs the same
    at the day's last call as at its first) and, once full, opens at the next 00:00 UTC
    (Keap's reset).
    """
    if d.limiter_lock is not None:
        conn.execute(d.limiter_lock)  # one limiter for all replicas
    row = conn.execute("SELECT not_before FROM limiter_state WHERE id = 1").fetchone()
    wait = max(0.0, float(row["not_before"]) - now)
    day = utc_day_start(now)
    calls_today = _calls_on(conn, d, day)  # read once; counted from rate_calls if new
    for limit, window in ceilings:
        if window == UTC_DAY_WINDOW:
            if calls_today >= limit:  # spent: nothing until the quota resets
                wait = max(wait, day + UTC_DAY_WINDOW + QUOTA_RESET_MARGIN - now)
            continue
        oldest = conn.execute(
            d.sql("SELECT at FROM rate_calls WHERE at > ? ORDER BY at DESC LIMIT 1 OFFSET ?"),
            (now - window, limit - 1),
        ).fetchone()
        if oldest is not None:
            wait = max(wait, float(oldest["at"]) + window - now)
    if wait > 0:
        return wait
    conn.execute(d.sql("INSERT INTO rate_calls (at) VALUES (?)"), (now,))
    conn.execute(d.sql("UPDATE rate_days SET calls = calls + 1 WHERE day = ?"), (day,))
    longest = max((window for _, window in ceilings), default=0.0)
    if int(now * 1000) % 97 == 0:  # prune now and then, not on every call
        conn.execute(d.sql("DELETE FROM rate_calls WHERE at < ?"), (now - longest - 1,))
        conn.execute(d.sql("DELETE FROM rate_days WHERE day < ?"), (day - UTC_DAY_WINDOW,))
    return 0.0


def _calls_on(conn: Conn, d: Dialect, day: float) -> int:
    """The calls reserved since ``day`` (00:00 UTC) began, from its counter. A day without
    one (the first call of the day, or the first since this table was added) is counted
    once from ``rate_calls``."""
    row = conn.execute(d.sql("SELECT calls FROM rate_days WHERE day = ?"), (day,)).fetchone()
    if row is not None:
        return int(row["calls"])
    counted = conn.execute(
        d.sql("SELECT COUNT(*) AS n FROM rate_calls WHERE at > ? AND at < ?"),
        (day, day + UTC_DAY_WINDOW),
    ).fetchone()
    calls = int(counted["n"])
    conn.execute(d.sql("INSERT INTO rate_days (day, calls) VALUES (?, ?)"), (day, calls))
    return calls


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
