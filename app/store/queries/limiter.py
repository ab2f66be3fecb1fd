"""The rate limiter every replica shares: reserved calls and the pause after a 429."""

from __future__ import annotations

from functools import lru_cache

from app.domain.quota import QUOTA_RESET_MARGIN, UTC_DAY_WINDOW, utc_day_start
from app.store.database import Conn
from app.store.dialect import Dialect, sql

# The calls made on a UTC day (bound: its 00:00), as the gate counts them: the day's
# counter in rate_days, kept by a trigger on rate_calls; 0 before the day's first call.
_CALLS_ON_DAY = "COALESCE((SELECT calls FROM rate_days WHERE day = ?), 0)"


def reserve_call(conn: Conn, d: Dialect, now: float, ceilings: list[tuple[int, float]]) -> float:
    """Reserve one call if every (limit, window) ceiling allows it; else the wait in seconds.

    A ceiling of ``limit`` calls in any sliding ``window`` is full when that many calls
    were made within the last ``window`` seconds; the next slot opens when the oldest of
    the last ``limit`` calls leaves the window. A UTC_DAY_WINDOW ceiling counts the
    calls since 00:00 UTC (``rate_days``, one counter a day that a trigger on
    ``rate_calls`` keeps, so the check costs the same at the day's last call as at its
    first) and, once full, opens at the next 00:00 UTC (Keap's reset).

    Everything the check needs is read in one statement, and the reservation is written
    in one: each statement is a round trip, and the thread running it must win the GIL
    back from a busy worker's event loop after each (docs/performance.md, "Register").
    """
    if d.limiter_lock is not None:
        conn.execute(d.limiter_lock)  # one limiter for all replicas
    day = utc_day_start(now)
    sliding = [(limit, window) for limit, window in ceilings if window != UTC_DAY_WINDOW]
    params: list[float | int] = [day]
    for limit, window in sliding:
        params += [now - window, limit - 1]
    row = conn.execute(_state_sql(len(sliding), d.placeholder), params).fetchone()
    wait = max(0.0, float(row["not_before"]) - now)
    for i, (_, window) in enumerate(sliding):
        oldest = row[f"oldest{i}"]
        if oldest is not None:
            wait = max(wait, float(oldest) + window - now)
    calls_today = int(row["calls_today"])
    for limit, window in ceilings:
        if window == UTC_DAY_WINDOW and calls_today >= limit:
            # spent: nothing until the quota resets
            wait = max(wait, day + UTC_DAY_WINDOW + QUOTA_RESET_MARGIN - now)
    if wait > 0:
        return wait
    conn.execute(d.sql("INSERT INTO rate_calls (at) VALUES (?)"), (now,))  # (and counts it)
    longest = max((window for _, window in ceilings), default=0.0)
    if int(now * 1000) % 97 == 0:  # prune now and then, not on every call
        conn.execute(d.sql("DELETE FROM rate_calls WHERE at < ?"), (now - longest - 1,))
        conn.execute(d.sql("DELETE FROM rate_days WHERE day < ?"), (day - UTC_DAY_WINDOW,))
    return 0.0


@lru_cache(maxsize=8)
def _state_sql(windows: int, placeholder: str) -> str:
    """The limiter's pause, the calls made today (from its counter) and, for each
    of ``windows`` sliding windows, the time of the call that would have to leave it."""
    oldest = "".join(
        f", (SELECT at FROM rate_calls WHERE at > ? ORDER BY at DESC LIMIT 1 OFFSET ?) AS oldest{i}"
        for i in range(windows)
    )
    return sql(
        f"SELECT not_before, {_CALLS_ON_DAY} AS calls_today{oldest}"
        " FROM limiter_state WHERE id = 1",
        placeholder,
    )


def quota_use(conn: Conn, d: Dialect, moments: list[float], day: float) -> list[int]:
    """The quota budget: the calls let through since each of ``moments``, then those of
    the UTC ``day`` (00:00) as the gate counts them, from its counter (one row to read,
    however busy the day)."""
    used = [
        int(
            conn.execute(
                d.sql("SELECT COUNT(*) AS n FROM rate_calls WHERE at > ?"), (moment,)
            ).fetchone()["n"]
        )
        for moment in moments
    ]
    today = conn.execute(d.sql(f"SELECT {_CALLS_ON_DAY} AS n"), (day,)).fetchone()
    return [*used, int(today["n"])]


def set_not_before(conn: Conn, d: Dialect, until: float) -> None:
    conn.execute(
        d.sql("UPDATE limiter_state SET not_before = ? WHERE id = 1 AND not_before < ?"),
        (until, until),
    )
