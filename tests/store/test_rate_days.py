"""The day ceiling's counter (rate_days), on both databases: the check reads one counter,
so a reservation late in a busy day costs what the first did (docs/performance.md,
"Measured: OAuth scale", stop 26: walking the day's calls took 37 ms at 140 000)."""

from __future__ import annotations

from typing import Any

import pytest

from app.delivery.budget import read_budget
from app.domain.quota import QUOTA_RESET_MARGIN, UTC_DAY_WINDOW, utc_day_start
from app.store.base import Store
from app.store.dialect import POSTGRES, SQLITE
from tests.store.test_store_contract import T0

DAY = utc_day_start(T0)
MIDNIGHT = DAY + UTC_DAY_WINDOW  # the next 00:00 UTC


async def execute(store: Store, text: str, *params: Any) -> list[tuple[Any, ...]]:
    dialect = SQLITE if store.dialect == "sqlite" else POSTGRES

    def run(conn: Any) -> list[Any]:
        cursor = conn.execute(dialect.sql(text), params)
        return list(cursor.fetchall()) if text.startswith("SELECT") else []

    rows = await store.db.write(run)  # type: ignore[attr-defined]
    return [tuple(row.values()) if isinstance(row, dict) else tuple(row) for row in rows]


async def calls_made(store: Store, *moments: float) -> None:
    """Calls in rate_calls that the limiter did not reserve: those of a relay from before
    the counter existed, or, in the second test, ones its counter never saw."""
    for at in moments:
        await execute(store, "INSERT INTO rate_calls (at) VALUES (?)", at)


async def test_a_database_migrated_mid_day_counts_the_days_calls_once(store: Store) -> None:
    await calls_made(store, DAY - 10, DAY + 1, DAY + 2, DAY + 3)  # one of them yesterday
    day = [(4, UTC_DAY_WINDOW)]

    assert await store.reserve_call(DAY + 100, day) == 0.0  # the day's 4th call
    assert await store.reserve_call(DAY + 101, day) == pytest.approx(
        MIDNIGHT + QUOTA_RESET_MARGIN - (DAY + 101)
    )
    assert await execute(store, "SELECT day, calls FROM rate_days") == [(DAY, 4)]


async def test_the_days_check_reads_its_counter_not_every_call_of_the_day(store: Store) -> None:
    day = [(3, UTC_DAY_WINDOW)]
    assert await store.reserve_call(DAY + 100, day) == 0.0  # the counter starts: 1
    await calls_made(store, *(DAY + 200 + i for i in range(10)))  # unseen by the counter

    # Walking the day's calls would find 11 and wait for midnight; the counter says 1.
    assert await store.reserve_call(DAY + 300, day) == 0.0
    assert await store.reserve_call(DAY + 301, day) == 0.0
    assert await store.reserve_call(DAY + 302, day) > 0  # 3 reserved: spent
    assert await execute(store, "SELECT calls FROM rate_days WHERE day = ?", DAY) == [(3,)]


async def test_the_counters_of_past_days_are_pruned(store: Store) -> None:
    minute = [(100, 60.0)]
    assert await store.reserve_call(DAY + 100, minute) == 0.0  # counted without a day ceiling
    # A reservation two days on whose millisecond prunes (the limiter prunes 1 in 97).
    later = next(
        at
        for at in (MIDNIGHT + UTC_DAY_WINDOW + 100 + ms / 1000 for ms in range(200))
        if int(at * 1000) % 97 == 0
    )
    assert await store.reserve_call(later, minute) == 0.0

    assert await execute(store, "SELECT day, calls FROM rate_days") == [(utc_day_start(later), 1)]


async def test_the_budget_counts_the_day_as_the_gate_does(store: Store) -> None:
    """The dashboard, /metrics and the quota alerts read the day from the gate's counter:
    the same figure the gate enforces, and one row to read late in a busy day."""
    await calls_made(store, DAY + 1, DAY + 2)
    # No reservation yet today: the day is counted from the calls themselves.
    assert (await read_budget(store, (5, 240, 3), DAY + 50)).day.used == 2

    assert await store.reserve_call(DAY + 100, [(3, UTC_DAY_WINDOW)]) == 0.0  # the 3rd
    await calls_made(store, DAY + 260)  # unseen by the counter
    budget = await read_budget(store, (5, 240, 3), DAY + 300)
    assert [w.used for w in budget.windows] == [0, 1, 3]  # the rows would say 4 today
